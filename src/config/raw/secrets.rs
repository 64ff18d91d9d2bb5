//! The secrets keys as written: the top-level `[secrets]` table of
//! sources, and the service keys `secrets` and `secret_env`. Checks that
//! span keys (one source per secret, known names, file permissions) are
//! in `build`.

use serde::Deserialize;

/// One entry of `[secrets]`: `{ file = "..." }`, `{ env = "..." }` or
/// `{ credential = "..." }` (exactly one, checked in `build`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawSecretSource {
    pub file: Option<String>,
    pub env: Option<String>,
    pub credential: Option<String>,
}
