//! The private key file: an Ed25519 key as PKCS#8 PEM (`BEGIN PRIVATE KEY`,
//! what `openssl genpkey -algorithm ed25519` writes and every JOSE library
//! reads), mode 0600, never overwritten unless asked, refused when group or
//! others may read it (as ssh refuses a private key that is too open).
//!
//! Default location: root (and services running as root) keep one identity
//! per machine in `/etc/ckb-libbpf/identity.key`; any other user, a service
//! account included, in `$XDG_CONFIG_HOME/ckb-libbpf/identity.key`, else
//! `$HOME/.config/ckb-libbpf/identity.key` (a service account's HOME is its
//! state directory, e.g. /var/lib/ckb).

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::SigningKey;
use zeroize::Zeroize as _;

use crate::error::{Exit, Failure};

/// Where the key lives when `--key` is not given (see the module comment).
pub fn default_path() -> Result<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from("/etc/ckb-libbpf/identity.key"));
    }
    default_user_path(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn default_user_path(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf> {
    // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    let base = match (xdg.filter(|p| p.is_absolute()), home) {
        (Some(x), _) => x,
        (None, Some(h)) if h.is_absolute() => h.join(".config"),
        _ => {
            return Err(
                Failure::new(Exit::Usage, "no default key location: HOME is not set")
                    .hint("name the key file with --key PATH")
                    .into(),
            )
        }
    };
    Ok(base.join("ckb-libbpf").join("identity.key"))
}

/// A new key from the kernel's random number generator.
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| anyhow::anyhow!("reading 32 random bytes from the kernel: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.zeroize();
    Ok(key)
}

/// Writes `key` to `path` (mode 0600). Without `force` an existing file is
/// never touched (O_EXCL: no race with a concurrent generate either). With
/// `force` the new key goes to a fresh 0600 file beside it first and is
/// renamed over the old one, so a crash leaves the old key or the new one,
/// never half a file. Missing parent directories are created 0700.
pub fn write(path: &Path, key: &SigningKey, force: bool) -> Result<()> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding the key as PKCS#8: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let target = if force {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.new-{}", std::process::id()))
    } else {
        path.to_path_buf()
    };
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !force => {
            return Err(Failure::new(
                Exit::Usage,
                format!("{} already exists; not overwriting an identity", path.display()),
            )
            .hint(
                "`ckb-libbpf identity show` prints its DID; --force replaces it (the old DID is lost for good)",
            )
            .into())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("creating {}", target.display()));
        }
    };
    // The umask can only have removed bits; make the mode exact anyway.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|_| f.write_all(pem.as_bytes()))
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", target.display()))?;
    if force {
        if let Err(e) = fs::rename(&target, path) {
            let _ = fs::remove_file(&target);
            return Err(e).with_context(|| format!("replacing {}", path.display()));
        }
    }
    Ok(())
}

/// Reads the key at `path`, refusing a file that group or others can
/// access, with the remedy.
pub fn read(path: &Path) -> Result<SigningKey> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::new(
                Exit::Usage,
                format!("no identity key at {}", path.display()),
            )
            .hint("create one with `ckb-libbpf identity generate` (or name it with --key PATH)")
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    // The mode of the file we opened, not of whatever the path names later.
    let meta = f
        .metadata()
        .with_context(|| format!("reading the mode of {}", path.display()))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "permissions {mode:04o} for {} are too open: a private key must not be accessible by group or others",
                path.display()
            ),
        )
        .hint(format!("chmod 600 {}", path.display()))
        .into());
    }
    let mut pem = String::new();
    f.read_to_string(&mut pem)
        .with_context(|| format!("reading {}", path.display()))?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
        Failure::new(
            Exit::Usage,
            format!(
                "{} is not an Ed25519 private key in PKCS#8 PEM: {e}",
                path.display()
            ),
        )
        .hint("name the file `identity generate` wrote, with --key PATH")
    });
    pem.zeroize();
    Ok(key?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ckb-libbpf-keyfile-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_0600_reads_back_and_never_overwrites() {
        let d = tmp("rw");
        let p = d.join("sub").join("identity.key");
        let k = SigningKey::from_bytes(&[5; 32]);
        write(&p, &k, false).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        assert!(fs::read_to_string(&p)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(read(&p).unwrap().to_bytes(), k.to_bytes());

        let other = SigningKey::from_bytes(&[6; 32]);
        let e = write(&p, &other, false).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Usage);
        assert_eq!(read(&p).unwrap().to_bytes(), k.to_bytes(), "untouched");

        write(&p, &other, true).unwrap();
        assert_eq!(read(&p).unwrap().to_bytes(), other.to_bytes());
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let left: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_a_key_group_or_others_can_read() {
        let d = tmp("mode");
        let p = d.join("k");
        write(&p, &SigningKey::from_bytes(&[1; 32]), false).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            let e = read(&p).unwrap_err();
            assert_eq!(exit_code(&e), Exit::Usage);
            assert!(format!("{e}").contains("too open"), "{e}");
            assert_eq!(
                crate::error::remedy(&e),
                Some(format!("chmod 600 {}", p.display()).as_str())
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            assert!(read(&p).is_ok());
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_or_garbage_key_is_a_usage_error() {
        let d = tmp("bad");
        fs::create_dir_all(&d).unwrap();
        let e = read(&d.join("none")).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Usage);
        let p = d.join("garbage");
        fs::write(&p, "hello").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exit_code(&read(&p).unwrap_err()), Exit::Usage);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn default_user_location_follows_xdg() {
        let x = default_user_path(Some("/x/cfg".into()), Some("/home/u".into())).unwrap();
        assert_eq!(x, Path::new("/x/cfg/ckb-libbpf/identity.key"));
        let h = default_user_path(Some("rel".into()), Some("/var/lib/ckb".into())).unwrap();
        assert_eq!(h, Path::new("/var/lib/ckb/.config/ckb-libbpf/identity.key"));
        assert!(default_user_path(None, None).is_err());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            generate().unwrap().to_bytes(),
            generate().unwrap().to_bytes()
        );
    }
}
