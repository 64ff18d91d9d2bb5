//! Service output: line splitting, rotating files, the in-memory ring.
//!
//! Pure pieces with no knowledge of the event loop: the loop reads pipe
//! bytes and feeds them to a [`LineSplitter`], then hands each line to a
//! [`RotatingFile`] and a [`Ring`].

mod query;
mod ring;
mod rotate;
mod splitter;
#[cfg(test)]
mod testutil;

pub use self::{
    query::LogFilter,
    ring::{LogLine, Ring},
    rotate::RotatingFile,
    splitter::LineSplitter,
};

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The service's standard output.
    Stdout,
    /// The service's standard error.
    Stderr,
}
