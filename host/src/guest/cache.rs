//! Compiled code on disk, loaded only when it provably comes from the module and engine in use.
//!
//! wasmtime runs deserialized code as it is (`Module::deserialize` is `unsafe`): a file that is
//! not what this process compiled can do anything this process can. Measured before this
//! module existed: a foreign `.cwasm` under the embedded module's name made `lws validate`
//! accept an invalid manifest (exit 1 became 0). So a file is loaded only when all of these hold:
//!
//! 1. **Its directory and the file are private.** The directory is owned by this user (or by
//!    root, for the read-only directory of an image) and writable by no one else; the file is a
//!    regular file (not a symlink) with the same owner rule and no group or world write bit.
//!    Directories we create are 0700, files 0600. This keeps other local users out.
//! 2. **Its seal checks.** A file is `tag | header | code`, the header naming the source
//!    module's sha256 and the engine key (`Engine::precompile_compatibility_hash`), and the tag is
//!    HMAC-SHA256 over header and code. The header must name this module and this engine, so a
//!    file renamed from another module or engine, truncated or corrupted is refused.
//! 3. **The cache's key is not in the cache.** The writable cache is sealed with a per-user
//!    random key kept elsewhere ([`CacheDir::key_file`], `~/.config/lws/module-cache.key`, 0600),
//!    so whoever can write the cache but not read that key (a CI cache restored from another
//!    job, a shared volume, a copied home directory) cannot forge a file that loads. The image's
//!    precompiled directory has no secret to use (it is built on another machine): its files are
//!    sealed with a public key, which catches swaps and corruption, and they are trusted because
//!    of rule 1 (root-owned, in a read-only image layer).
//!
//! What this does not stop: this user or root. Either can replace the `lws` binary itself, and
//! can read the key. The file is read once into memory and checked there, so it cannot change
//! between the check and the load.
//!
//! A file that fails any check is logged and ignored; the module is compiled instead (and, for the
//! cache, the file is replaced), so a refusal costs time, never correctness.

use ring::hmac;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// Names the format; bumped when the layout or the tagged fields change.
const MAGIC: &[u8; 16] = b"lws-cwasm-v1\0\0\0\0";
/// HMAC-SHA256.
const TAG_LEN: usize = 32;
/// `MAGIC`, the module's sha256 in hex, the engine key in hex.
const HEADER_LEN: usize = MAGIC.len() + 64 + 16;

/// The public key of precompiled files: a domain separator, not a secret (see the module doc).
const PRECOMPILED_KEY: &[u8] = b"lws precompiled module, public seal";

/// The writable cache: where compiled code is kept, and the key that seals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    pub dir: PathBuf,
    /// Outside `dir` (rule 3 of the module doc); created on first use.
    pub key_file: PathBuf,
}

/// Who may own a directory or file of compiled code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owners {
    /// Only the user this process runs as: the cache and its key.
    Me,
    /// This user or root: an image's read-only directory, built as root.
    MeOrRoot,
}

/// How files in one directory are sealed and who may have written them.
pub struct Seal {
    key: hmac::Key,
    owners: Owners,
}

impl Seal {
    /// The seal of precompiled files ([`super::precompile`], `$LWS_MODULE_DIR`).
    pub fn precompiled() -> Self {
        Seal {
            key: hmac::Key::new(hmac::HMAC_SHA256, PRECOMPILED_KEY),
            owners: Owners::MeOrRoot,
        }
    }

    /// The seal of the writable cache: its key is read from `key_file`, created (random,
    /// 0600) when missing.
    pub fn cache(key_file: &Path) -> Result<Self, Refused> {
        let key = read_or_create_key(key_file)?;
        Ok(Seal {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            owners: Owners::Me,
        })
    }
}

/// Why a file of compiled code was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// There is no such file: nothing to warn about.
    #[error("{0}: no such file")]
    Missing(PathBuf),
    #[error("{path}: {reason}")]
    NotPrivate { path: PathBuf, reason: String },
    #[error("{0}: not sealed for this module and engine")]
    BadSeal(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: wasmtime refused the code: {message}")]
    Engine { path: PathBuf, message: String },
}

/// What the seal binds a file to.
pub struct Identity<'a> {
    /// The source module's sha256, lowercase hex.
    pub module_sha256: &'a str,
    /// [`engine_key`] of the engine that compiled the code.
    pub engine_key: u64,
}

impl Identity<'_> {
    fn header(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(self.module_sha256.as_bytes());
        header.extend_from_slice(format!("{:016x}", self.engine_key).as_bytes());
        header
    }
}

/// `engine`'s `precompile_compatibility_hash` as a number.
pub fn engine_key(engine: &Engine) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

/// The module in `path` for `engine`, if the directory and file are private and the seal names
/// `identity`.
pub fn load(
    path: &Path,
    seal: &Seal,
    identity: &Identity<'_>,
    engine: &Engine,
) -> Result<Module, Refused> {
    let io = |source: std::io::Error| Refused::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(metadata) => check_private(dir, &metadata, seal.owners, 0o022)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Refused::Missing(path.to_path_buf()))
        }
        Err(error) => return Err(io(error)),
    }
    // No symlinks: the checks below are on the file itself, through the handle we read.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Refused::Missing(path.to_path_buf()))
        }
        Err(error) => return Err(io(error)),
    };
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(Refused::NotPrivate {
            path: path.to_path_buf(),
            reason: "not a regular file".to_string(),
        });
    }
    check_private(path, &metadata, seal.owners, 0o022)?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    let code =
        unseal(&bytes, seal, identity).ok_or_else(|| Refused::BadSeal(path.to_path_buf()))?;
    // SAFETY: `code` was sealed with this directory's key over this module's sha256 and this
    // engine's key, in a directory and file only this user (or root) can write, and it was read
    // once into memory, so it is what this program compiled for this engine; wasmtime checks
    // again that the code was built by this wasmtime version with settings this engine and this
    // CPU can run.
    unsafe { Module::deserialize(engine, code) }.map_err(|error| Refused::Engine {
        path: path.to_path_buf(),
        message: format!("{error:#}"),
    })
}

/// Writes `code` to `path`, sealed, through a temporary file renamed into place; creates the
/// directory 0700 if needed and refuses one that is not private.
pub fn store(
    path: &Path,
    seal: &Seal,
    identity: &Identity<'_>,
    code: &[u8],
) -> Result<(), Refused> {
    let io = |source: std::io::Error| Refused::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    check_private(
        dir,
        &std::fs::metadata(dir).map_err(io)?,
        seal.owners,
        0o022,
    )?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&sealed_prefix(code, seal, identity))?;
        file.write_all(code)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(io)
}

/// The tag and header that go before `code` in a file.
fn sealed_prefix(code: &[u8], seal: &Seal, identity: &Identity<'_>) -> Vec<u8> {
    let header = identity.header();
    let mut context = hmac::Context::with_key(&seal.key);
    context.update(&header);
    context.update(code);
    let mut prefix = context.sign().as_ref().to_vec();
    prefix.extend_from_slice(&header);
    prefix
}

/// The code in a file's `bytes`, when its header names `identity` and its tag checks.
fn unseal<'a>(bytes: &'a [u8], seal: &Seal, identity: &Identity<'_>) -> Option<&'a [u8]> {
    if bytes.len() < TAG_LEN + HEADER_LEN {
        return None;
    }
    let (tag, sealed) = bytes.split_at(TAG_LEN);
    if sealed[..HEADER_LEN] != identity.header()[..] {
        return None;
    }
    hmac::verify(&seal.key, sealed, tag).ok()?;
    Some(&sealed[HEADER_LEN..])
}

/// Refuses `path` unless its owner is allowed and none of the `forbidden` mode bits are set.
fn check_private(
    path: &Path,
    metadata: &std::fs::Metadata,
    owners: Owners,
    forbidden: u32,
) -> Result<(), Refused> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    private_reason(metadata.uid(), metadata.mode(), me, owners, forbidden).map_or(
        Ok(()),
        |reason| {
            Err(Refused::NotPrivate {
                path: path.to_path_buf(),
                reason,
            })
        },
    )
}

/// Why an object with `owner` and `mode` is not private to `me`, or `None` when it is.
fn private_reason(
    owner: u32,
    mode: u32,
    me: u32,
    owners: Owners,
    forbidden: u32,
) -> Option<String> {
    let allowed = owner == me || (owners == Owners::MeOrRoot && owner == 0);
    if !allowed {
        return Some(format!("owned by uid {owner}, not by this user (uid {me})"));
    }
    let bad = mode & forbidden;
    (bad != 0).then(|| {
        format!(
            "mode {:04o} lets others {} it",
            mode & 0o7777,
            if bad & 0o022 != 0 { "write" } else { "read" }
        )
    })
}

/// The cache's 32-byte key: read from `key_file` (private to this user, readable by no one
/// else), or created there at random when it does not exist.
fn read_or_create_key(key_file: &Path) -> Result<[u8; 32], Refused> {
    let io = |source: std::io::Error| Refused::Io {
        path: key_file.to_path_buf(),
        source,
    };
    if let Some(dir) = key_file.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        check_private(dir, &std::fs::metadata(dir).map_err(io)?, Owners::Me, 0o022)?;
    }
    let mut key = [0u8; 32];
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_file)
    {
        Ok(mut file) => {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                .map_err(|_| io(std::io::Error::other("the system random generator failed")))?;
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            return Ok(key);
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io(error)),
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(key_file)
        .map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    // A key others can read is no secret.
    check_private(key_file, &metadata, Owners::Me, 0o077)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    // A key another process is writing right now reads short: no cache this time.
    bytes.try_into().map_err(|_| Refused::NotPrivate {
        path: key_file.to_path_buf(),
        reason: "not a 32-byte key".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_user_or_root_may_own_and_no_one_else_may_write() {
        let me = 1000;
        let check = |owner, mode, owners| private_reason(owner, mode, me, owners, 0o022);
        assert_eq!(check(me, 0o40700, Owners::Me), None);
        assert_eq!(check(me, 0o40755, Owners::Me), None);
        assert_eq!(
            check(1001, 0o40700, Owners::Me).as_deref(),
            Some("owned by uid 1001, not by this user (uid 1000)")
        );
        assert!(check(0, 0o40755, Owners::Me).is_some());
        assert_eq!(check(0, 0o40755, Owners::MeOrRoot), None);
        assert_eq!(
            check(me, 0o40777, Owners::Me).as_deref(),
            Some("mode 0777 lets others write it")
        );
        assert!(check(me, 0o40720, Owners::Me).is_some());
        assert!(check(0, 0o100646, Owners::MeOrRoot).is_some());
        // The key must not even be readable by others.
        assert_eq!(
            private_reason(me, 0o100640, me, Owners::Me, 0o077).as_deref(),
            Some("mode 0640 lets others read it")
        );
    }

    #[test]
    fn a_seal_binds_the_code_to_its_module_engine_and_key() {
        let engine = Engine::default();
        let other_engine = {
            let mut config = wasmtime::Config::new();
            config.epoch_interruption(true);
            Engine::new(&config).unwrap()
        };
        let identity = |module_sha256, engine| Identity {
            module_sha256,
            engine_key: engine_key(engine),
        };
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let seal = Seal::precompiled();
        let code = b"compiled code";
        let mut file = sealed_prefix(code, &seal, &identity(&a, &engine));
        file.extend_from_slice(code);
        assert_eq!(
            unseal(&file, &seal, &identity(&a, &engine)),
            Some(&code[..])
        );
        assert_eq!(unseal(&file, &seal, &identity(&b, &engine)), None);
        assert_eq!(unseal(&file, &seal, &identity(&a, &other_engine)), None);
        let other_key = Seal {
            key: hmac::Key::new(hmac::HMAC_SHA256, b"another user's key"),
            owners: Owners::Me,
        };
        assert_eq!(unseal(&file, &other_key, &identity(&a, &engine)), None);
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(unseal(&flipped, &seal, &identity(&a, &engine)), None);
        assert_eq!(
            unseal(
                &file[..TAG_LEN + HEADER_LEN - 1],
                &seal,
                &identity(&a, &engine)
            ),
            None
        );
    }
}
