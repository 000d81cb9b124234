//! Secrets from files: `--admin-token-file`, `--token-keys-file`,
//! `--stream-keys-file` (and their `LIVESTACK_*_FILE` variables), so that
//! no secret has to appear in `/proc/PID/cmdline` (systemd
//! `LoadCredential=`, Kubernetes secret volumes, Docker secrets).
//!
//! Each flag with a secret also reads the environment (`hide_env_values`:
//! `--help` never prints it). Placeholders from the documentation's
//! examples (`replace-with-…`, `changeme`, `...`) are refused wherever a
//! secret is read, so that a copied example never reaches production.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Largest secret file read, in bytes: key lists are a few hundred bytes.
pub(crate) const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The content of the secret file at `path`, without its trailing newline
/// (as `echo secret > file` writes it).
///
/// # Errors
/// The file cannot be read, is larger than [`MAX_SECRET_FILE`], is not
/// UTF-8, is empty, or holds a documentation placeholder.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("{what}: cannot read {}", path.display()))?
        .len();
    if len > MAX_SECRET_FILE {
        bail!(
            "{what}: {} is {len} bytes, more than {MAX_SECRET_FILE}",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what}: cannot read {} as UTF-8", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        bail!("{what}: {} is empty", path.display());
    }
    refuse_placeholder(&text, what)?;
    Ok(text)
}

/// An optional secret from the file `path` (its `flag`) or else the
/// environment variable `env`, placeholders refused.
///
/// # Errors
/// As [`read_secret_file`]; a placeholder in the variable.
pub(crate) fn optional_secret(
    path: Option<&Path>,
    flag: &str,
    env: &str,
    what: &str,
) -> Result<Option<String>> {
    let secret = match path {
        Some(path) => Some(read_secret_file(path, flag)?),
        None => std::env::var(env).ok(),
    };
    if let Some(s) = &secret {
        refuse_placeholder(s, what)?;
    }
    Ok(secret)
}

/// Refuses a secret that is one of the documentation's placeholders.
///
/// # Errors
/// When `secret` contains `replace-with`, `changeme` or `...`, or is
/// `secret`/`password` (any case).
pub(crate) fn refuse_placeholder(secret: &str, what: &str) -> Result<()> {
    let lower = secret.to_ascii_lowercase();
    let placeholder = lower.contains("replace-with")
        || lower.contains("changeme")
        || lower.contains("...")
        || matches!(lower.trim(), "secret" | "password");
    if placeholder {
        bail!(
            "{what} is a placeholder from the documentation: generate a random one (e.g. `head -c 32 /dev/urandom | basenc --base64url`)"
        );
    }
    Ok(())
}

/// `NAME=KEY` stream keys from a file: one per line, `#` comments and blank
/// lines ignored.
///
/// # Errors
/// As [`read_secret_file`].
pub(crate) fn read_stream_keys_file(path: &Path) -> Result<Vec<String>> {
    let text = read_secret_file(path, "--stream-keys-file")?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_refused_and_real_secrets_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        for placeholder in [
            "replace-with-a-long-random-token",
            "k2:HS256:replace-with-base64url-of-32-random-bytes",
            "...",
            "CHANGEME-please-0123",
        ] {
            std::fs::write(&file, format!("{placeholder}\n")).unwrap();
            let e = read_secret_file(&file, "--admin-token-file").unwrap_err();
            assert!(e.to_string().contains("placeholder"), "{e}");
        }
        std::fs::write(&file, "a3f9c1d0e8b7a6c5d4e3f2a1\n").unwrap();
        assert_eq!(
            read_secret_file(&file, "x").unwrap(),
            "a3f9c1d0e8b7a6c5d4e3f2a1"
        );
        std::fs::write(
            &file,
            "# keys\ncam1=0123456789abcdef\n\n*=fedcba9876543210\n",
        )
        .unwrap();
        assert_eq!(
            read_stream_keys_file(&file).unwrap(),
            ["cam1=0123456789abcdef", "*=fedcba9876543210"]
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(read_secret_file(&file, "x").is_err(), "empty");
        assert!(read_secret_file(&dir.path().join("absent"), "x").is_err());
    }
}
