//! The files that describe the fleet (the database and its -wal/-shm, the log, known_hosts)
//! are the owner's alone: created 0600 in directories created 0700. A file found with a
//! looser mode is tightened to 0600 when we open it (the caller logs that it did).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files we create.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories we create (existing ones are left as they are).
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates `path` empty with mode 0600 if it does not exist (its directory 0700), else
/// tightens it. Returns whether an existing file had to be tightened.
pub fn ensure_file(path: &Path) -> io::Result<bool> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path),
        Err(e) => Err(e),
    }
}

/// Sets an existing file that group or others can access to 0600. A missing file is not an
/// error. Returns whether the mode changed.
pub fn tighten(path: &Path) -> io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !meta.is_file() || meta.permissions().mode() & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_0600_in_0700_dirs_and_loose_ones_are_tightened() {
        let tmp = std::env::temp_dir().join(format!("ptui-private-{}", std::process::id()));
        let file = tmp.join("a/b/f");
        assert!(
            !ensure_file(&file).unwrap(),
            "a new file is not 'tightened'"
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&tmp.join("a/b")), 0o700);
        assert_eq!(mode(&tmp.join("a")), 0o700);

        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        assert!(ensure_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        assert!(!tighten(&file).unwrap(), "already private");
        assert!(!tighten(&tmp.join("missing")).unwrap());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
