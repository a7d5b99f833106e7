//! What a job user could do to a file, judged from permission bits: for the
//! start-up warnings (a job user who can read `server.key`) and the policy's
//! own checks (an allowed program its user could replace).
//!
//! This is an operator's early warning, not the enforcement: the kernel
//! decides. It reads owner, group and mode along the path and ignores ACLs
//! and capabilities, so it can miss a way in but never invents one.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::jobs::RunAs;

const READ: u32 = 4;
const WRITE: u32 = 2;
const SEARCH: u32 = 1;

/// The permission bits (rwx, 0..=7) that apply to `user` for a file.
fn bits(user: &RunAs, meta: &std::fs::Metadata) -> u32 {
    let mode = meta.mode();
    if user.uid == 0 {
        7
    } else if meta.uid() == user.uid {
        (mode >> 6) & 7
    } else if meta.gid() == user.gid || user.groups.contains(&meta.gid()) {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// Whether `user` may search every directory above `path` (the canonical one).
fn reaches(user: &RunAs, path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|meta| bits(user, &meta) & SEARCH != 0))
}

/// Whether `user` could read the file at `path`.
pub(crate) fn can_read(user: &RunAs, path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    reaches(user, &path) && std::fs::metadata(&path).is_ok_and(|meta| bits(user, &meta) & READ != 0)
}

/// Whether `user` could change what runs as `path`: write the file itself,
/// or replace it or a directory above it through a directory it can write
/// (a sticky directory protects entries that the user does not own).
/// Checked along `path` as written and along where its symlinks lead.
pub(crate) fn can_replace(user: &RunAs, path: &Path) -> bool {
    let owns = |meta: &std::fs::Metadata| user.uid == 0 || meta.uid() == user.uid;
    let replaceable_in_parent = |entry: &Path| {
        let (Some(parent), Ok(meta)) = (entry.parent(), std::fs::symlink_metadata(entry)) else {
            return false;
        };
        std::fs::metadata(parent).is_ok_and(|dir| {
            let sticky = dir.mode() & 0o1000 != 0;
            bits(user, &dir) & (WRITE | SEARCH) == WRITE | SEARCH
                && (!sticky || owns(&dir) || owns(&meta))
                && reaches(user, parent)
        })
    };
    let along = |p: &Path| {
        let file_writable = std::fs::metadata(p).is_ok_and(|meta| bits(user, &meta) & WRITE != 0);
        (file_writable && reaches(user, p)) || p.ancestors().any(replaceable_in_parent)
    };
    along(path) || path.canonicalize().is_ok_and(|real| along(&real))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn nobody() -> RunAs {
        RunAs {
            user: "rcmdt-nobody".into(),
            uid: 65_500,
            gid: 65_500,
            groups: vec![65_500],
            home: "/".into(),
            shell: "/bin/sh".into(),
        }
    }

    fn temp(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rcmdt-access-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn others_bits_decide_for_a_stranger() {
        let dir = temp("read");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.join("server.key");
        std::fs::write(&key, "secret").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let owner = std::fs::metadata(&key).unwrap().uid();
        let stranger = if owner == nobody().uid { RunAs { uid: 65_501, ..nobody() } } else { nobody() };
        assert!(!can_read(&stranger, &key));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(can_read(&stranger, &key));
        // A directory it cannot search hides the file.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!can_read(&stranger, &key));
        // A directory it can write lets it replace what is inside.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(can_replace(&stranger, &key));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!can_replace(&stranger, &key));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
