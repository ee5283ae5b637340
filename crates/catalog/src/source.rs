//! Where an installer's files come from (compiled in, or a directory), read with a size limit
//! checked before the read, so a huge file costs a `stat` and not its size in memory.

use include_dir::Dir;
use std::path::PathBuf;

/// Manifests are a few KiB; anything over this is refused before it is read.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A file that could not be read, with the (1-based) line and column at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ReadProblem {
    /// A problem with the file as a whole: line 1.
    pub fn whole(message: String) -> Self {
        Self {
            line: 1,
            column: 1,
            message,
        }
    }
}

pub trait FileSource {
    /// The file's size in bytes, without reading it.
    fn size(&self, rel: &str) -> Result<u64, ReadProblem>;
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, ReadProblem>;
    fn label(&self, rel: &str) -> String;
    /// A file of the shared library (`_lib/NAME` beside the installer directories).
    fn library(&self, name: &str) -> Result<String, ReadProblem>;

    /// Reads a UTF-8 file, refusing it unread when it is larger than `limit` (`too_big` gives
    /// the message for a size).
    fn read_limited(
        &self,
        rel: &str,
        limit: u64,
        too_big: &dyn Fn(u64) -> String,
    ) -> Result<String, ReadProblem> {
        let size = self.size(rel)?;
        if size > limit {
            return Err(ReadProblem::whole(too_big(size)));
        }
        utf8(rel, self.read_bytes(rel)?)
    }
}

/// `1.5 MiB` / `12 KiB`, for size messages.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// Text, or where the first invalid byte is.
fn utf8(rel: &str, bytes: Vec<u8>) -> Result<String, ReadProblem> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ReadProblem {
            line,
            column,
            message: format!(
                "{rel} is not UTF-8 (an invalid byte at line {line}, column {column}); save it \
                 as UTF-8"
            ),
        }
    })
}

pub struct Bundled<'a>(pub &'a Dir<'static>);

impl Bundled<'_> {
    fn file(&self, rel: &str) -> Result<&'static include_dir::File<'static>, ReadProblem> {
        super::BUNDLED
            .get_file(self.0.path().join(rel))
            .ok_or_else(|| ReadProblem::whole(format!("{rel} does not exist")))
    }
}

impl FileSource for Bundled<'_> {
    fn size(&self, rel: &str) -> Result<u64, ReadProblem> {
        Ok(self.file(rel)?.contents().len() as u64)
    }
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, ReadProblem> {
        Ok(self.file(rel)?.contents().to_vec())
    }
    fn label(&self, rel: &str) -> String {
        format!("bundled:installers/{}", self.0.path().join(rel).display())
    }
    fn library(&self, name: &str) -> Result<String, ReadProblem> {
        bundled_library(name)
    }
}

/// A library file compiled in (`installers/_lib/NAME`).
fn bundled_library(name: &str) -> Result<String, ReadProblem> {
    let path = format!("{}/{name}", crate::include::LIBRARY_DIR);
    let file = super::BUNDLED.get_file(&path).ok_or_else(|| {
        ReadProblem::whole(format!("{name} does not exist in the bundled library"))
    })?;
    utf8(&path, file.contents().to_vec())
}

pub struct OnDisk(pub PathBuf);

impl OnDisk {
    /// The file's real path, refused when a symlink leads out of the installer directory.
    fn resolve(&self, rel: &str) -> Result<PathBuf, ReadProblem> {
        let base = self
            .0
            .canonicalize()
            .map_err(|e| ReadProblem::whole(format!("{}: {e}", self.0.display())))?;
        let real = self.0.join(rel).canonicalize().map_err(|_| {
            ReadProblem::whole(format!("{rel} does not exist in {}", self.0.display()))
        })?;
        if !real.starts_with(&base) {
            return Err(ReadProblem::whole(format!(
                "{rel} resolves to {} outside the installer directory",
                real.display()
            )));
        }
        if !real.is_file() {
            return Err(ReadProblem::whole(format!("{rel} is not a regular file")));
        }
        Ok(real)
    }
}

impl FileSource for OnDisk {
    fn size(&self, rel: &str) -> Result<u64, ReadProblem> {
        let real = self.resolve(rel)?;
        std::fs::metadata(&real)
            .map(|m| m.len())
            .map_err(|e| ReadProblem::whole(format!("{rel}: {e}")))
    }
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, ReadProblem> {
        let real = self.resolve(rel)?;
        std::fs::read(&real).map_err(|e| ReadProblem::whole(format!("{rel}: {e}")))
    }
    fn label(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
    /// `_lib/NAME` beside this installer's directory when that directory has one (a catalog
    /// with its own library), else the bundled library.
    fn library(&self, name: &str) -> Result<String, ReadProblem> {
        let Some(dir) = self.0.parent().map(|p| p.join(crate::include::LIBRARY_DIR)) else {
            return bundled_library(name);
        };
        if !dir.is_dir() {
            return bundled_library(name);
        }
        let lib = OnDisk(dir);
        let too_big = |size: u64| crate::script::size_problem(size).unwrap_or_default();
        lib.read_limited(name, crate::script::MAX_SCRIPT_BYTES as u64, &too_big)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_located() {
        let p = utf8("manifest.yml", b"id: x\nname: caf\xe9\n".to_vec()).unwrap_err();
        assert_eq!((p.line, p.column), (2, 10));
        assert!(p.message.contains("save it as UTF-8"), "{}", p.message);
        let p = utf8("m", b"\xff".to_vec()).unwrap_err();
        assert_eq!((p.line, p.column), (1, 1));
        // Columns count characters, not bytes.
        let p = utf8("m", "é\u{2713}\u{ff}".bytes().chain([0xff]).collect()).unwrap_err();
        assert_eq!((p.line, p.column), (1, 4));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1), "1 KiB");
        assert_eq!(human_size(120 * 1024 + 1), "121 KiB");
        assert_eq!(human_size(300 * 1024 * 1024), "300.0 MiB");
    }
}
