//! Tokens and their roles: read from a tokens file, or a random admin token generated
//! into the data folder on first start. Tokens are never logged.

use std::collections::HashMap;
use std::path::Path;

use promesa_protocol::Role;
use promesa_protocol::limits::TOKEN_LEN_MAX;
use rand::Rng;

/// File name of the generated admin token in the data folder.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Bytes of randomness in a generated token (shown as twice as many hex digits).
const GENERATED_TOKEN_BYTES: usize = 24;

/// The tokens a server accepts.
#[derive(Default)]
pub struct Tokens {
    roles: HashMap<String, Role>,
}

impl Tokens {
    /// Returns the role of a token, if it is known.
    pub fn role(&self, token: &str) -> Option<Role> {
        self.roles.get(token).copied()
    }

    /// Tokens known.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// True if no token is known.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Parses a tokens file: one `TOKEN ROLE` per line (role `read`, `reserve` or
    /// `admin`); blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut roles = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(token), Some(role), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!("line {line_number}: expected a token and a role separated by a space"));
            };
            let role = Role::from_name(role).ok_or_else(|| {
                format!("line {line_number}: role {role:?} is not known; expected read, reserve or admin")
            })?;
            if token.len() > TOKEN_LEN_MAX {
                return Err(format!(
                    "line {line_number}: the token is {} bytes, over the limit token_len_max = {TOKEN_LEN_MAX}",
                    token.len()
                ));
            }
            if roles.insert(token.to_owned(), role).is_some() {
                return Err(format!("line {line_number}: the token is listed twice"));
            }
        }
        Ok(Tokens { roles })
    }

    /// Reads a tokens file, refusing one that other users may read.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        crate::files::check_private(path)?;
        let text =
            std::fs::read_to_string(path).map_err(|error| format!("failed to read {}: {error}", path.display()))?;
        let tokens = Tokens::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        if tokens.is_empty() {
            return Err(format!("{} lists no token", path.display()));
        }
        Ok(tokens)
    }

    /// Reads the generated admin token from the data folder, generating it first if
    /// it is not there.
    pub fn generated_admin(data_dir: &Path) -> Result<Tokens, String> {
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        if !path.exists() {
            let mut bytes = [0u8; GENERATED_TOKEN_BYTES];
            rand::thread_rng().fill(&mut bytes);
            let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            crate::files::write_private(&path, format!("{token}\n").as_bytes())?;
            tracing::info!(path = %path.display(), "generated an admin token");
        }
        crate::files::check_private(&path)?;
        let token =
            std::fs::read_to_string(&path).map_err(|error| format!("failed to read {}: {error}", path.display()))?;
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("{} is empty; delete it to generate a new token", path.display()));
        }
        Ok(Tokens { roles: HashMap::from([(token.to_owned(), Role::Admin)]) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_lines() {
        let tokens = Tokens::parse("# comment\n\nabc read\n def  admin \n").unwrap();
        assert_eq!(tokens.role("abc"), Some(Role::Read));
        assert_eq!(tokens.role("def"), Some(Role::Admin));
        assert_eq!(tokens.role("xyz"), None);
    }

    #[test]
    fn tokens_file_errors_name_the_line() {
        let check = |text: &str, expected: &str| {
            let error = Tokens::parse(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
        };
        check("abc\n", "line 1: expected a token and a role");
        check("abc read\nabc owner\n", "line 2: role \"owner\" is not known");
        check("abc read\nabc admin\n", "line 2: the token is listed twice");
        check(&format!("{} read\n", "t".repeat(257)), "over the limit token_len_max = 256");
    }
}
