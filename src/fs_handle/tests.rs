//! The walker on trees with a link at every level, and entries that vanish or change type at the
//! exact moment a racing agent would change them (a hook at the walker's pause points), or while a
//! thread swaps them as fast as it can.

use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt};
use std::sync::atomic::Ordering;

/// Changing owners needs root; elsewhere an explicit skip, and a failure under CI=true.
pub(crate) fn as_root(test: &str) -> bool {
    if unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test}: CI=true and the test needs root");
    eprintln!("skipped: {test}: changing owners needs root");
    false
}

const AGENT: Owner = Owner { uid: 4243, gid: 4244 };

/// `inside/` with a link to `outside/` (a directory) and to `outside/secret` (a file) at every
/// level, absolute and relative, and files named like those outside.
struct Tree {
    _t: tempfile::TempDir,
    inside: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let t = tempfile::tempdir().unwrap();
        let (inside, outside) = (t.path().join("inside"), t.path().join("outside"));
        std::fs::create_dir_all(outside.join("d")).unwrap();
        for f in ["secret", "f", "d/secret", "d/f"] {
            std::fs::write(outside.join(f), format!("outside {f}")).unwrap();
        }
        let mut level = inside.clone();
        for (depth, name) in ["", "a", "b", "c"].iter().enumerate() {
            level = level.join(name);
            std::fs::create_dir_all(&level).unwrap();
            std::fs::write(level.join("f"), "inside").unwrap();
            symlink(&outside, level.join("l_dir")).unwrap();
            symlink(outside.join("secret"), level.join("l_file")).unwrap();
            symlink(format!("{}outside/d", "../".repeat(depth + 1)), level.join("l_rel")).unwrap();
            std::fs::create_dir(level.join("d")).unwrap();
            std::fs::write(level.join("d/secret"), "inside").unwrap();
        }
        Tree { _t: t, inside, outside }
    }

    fn dir(&self) -> Dir {
        Dir::open_trusted(&self.inside).unwrap()
    }

    /// Owner, mode and content of everything outside.
    fn outside_state(&self) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>)> {
        let mut all = BTreeMap::new();
        let mut todo = vec![self.outside.clone()];
        while let Some(p) = todo.pop() {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
            all.insert(p.clone(), (m.uid(), m.gid(), m.mode(), data));
            if m.is_dir() {
                todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
        }
        all
    }
}

/// Every entry below `root` (itself included, links not followed) and its owner.
fn owners(root: &Path) -> Vec<(PathBuf, u32, u32)> {
    let mut all = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        all.push((p.clone(), m.uid(), m.gid()));
        if m.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    all
}

/// Runs `f` with `hook` called at every pause point of the walker on this thread.
fn with_hook<T>(hook: impl FnMut(&Path, &OsStr, Point) + 'static, f: impl FnOnce() -> T) -> T {
    RACE.with(|r| *r.borrow_mut() = Some(Box::new(hook)));
    let out = f();
    RACE.with(|r| *r.borrow_mut() = None);
    out
}

#[test]
fn a_walk_hands_over_everything_inside_and_nothing_a_link_points_at() {
    if !as_root("a_walk_hands_over_everything_inside") {
        return;
    }
    let t = Tree::new();
    let before = t.outside_state();
    let walk = t.dir().hand_over(AGENT).unwrap();
    assert_eq!(t.outside_state(), before, "nothing outside changed");
    let inside = owners(&t.inside);
    for (p, uid, gid) in &inside {
        assert_eq!((*uid, *gid), (AGENT.uid, AGENT.gid), "{} handed over", p.display());
    }
    assert_eq!(walk, Walk { changed: inside.len() as u64, ..Walk::default() });
    // Control: a second walk changes nothing, and the links were there to follow.
    assert_eq!(t.dir().hand_over(AGENT).unwrap().changed, 0);
    assert_eq!(std::fs::read_to_string(t.inside.join("a/b/l_dir/secret")).unwrap(), "outside secret");
}

#[test]
fn a_link_at_any_component_is_refused_with_and_without_openat2() {
    let t = Tree::new();
    let d = t.dir();
    symlink(t.inside.join("a/b"), t.inside.join("a/lnk")).unwrap();
    assert_eq!(d.open_beneath(Path::new("a/b/c")).unwrap().path(), t.inside.join("a/b/c"));
    let parts = |s: &'static str| s.split('/').map(OsStr::new).collect::<Vec<_>>();
    assert!(d.open_components(&parts("a/b/c")).is_ok(), "control: the fallback walk opens it too");
    for rel in ["a/lnk/c", "a/lnk", "l_dir", "a/l_dir/d", "a/b/l_rel", "a/f"] {
        let e = d.open_beneath(Path::new(rel)).unwrap_err();
        assert!(e.vanished(), "{rel}: {e}");
        assert!(d.open_components(&parts(rel)).unwrap_err().vanished(), "{rel} (fallback)");
    }
    let e = d.open_dir("l_dir").unwrap_err();
    assert!(e.to_string().contains("symbolic link") && e.to_string().contains("l_dir"), "{e}");
    for rel in ["../outside", "a/../../outside", "/etc"] {
        assert!(matches!(d.open_beneath(Path::new(rel)), Err(FsError::BadName { .. })), "{rel}");
    }
    for name in ["a/b", "..", ".", ""] {
        assert!(matches!(d.open_dir(name), Err(FsError::BadName { .. })), "{name:?}");
    }
}

#[test]
fn create_dir_opens_or_makes_a_real_directory_and_never_a_link() {
    let t = Tree::new();
    let d = t.dir();
    let (_, created) = d.create_dir("a", 0o755, None).unwrap();
    assert!(!created, "an existing directory is opened");
    assert!(d.create_dir("l_dir", 0o755, None).unwrap_err().vanished());
    assert!(d.create_dir_beneath(Path::new("a/l_dir/new"), 0o755, None).unwrap_err().vanished());
    assert!(!t.outside.join("new").exists());
    let (made, created) = d.create_dir_beneath(Path::new("n1/n2"), 0o700, None).unwrap();
    assert!(created && made.path() == t.inside.join("n1/n2") && t.inside.join("n1/n2").is_dir());
    if as_root("create_dir gives its owner") {
        let (_, created) = d.create_dir("owned", 0o755, Some(AGENT)).unwrap();
        let m = std::fs::metadata(t.inside.join("owned")).unwrap();
        assert!(created && (m.uid(), m.gid()) == (AGENT.uid, AGENT.gid));
        d.create_dir("a", 0o755, Some(AGENT)).unwrap();
        assert_eq!(std::fs::metadata(t.inside.join("a")).unwrap().uid(), 0, "only what it creates");
    }
}

#[test]
fn remove_takes_a_tree_with_links_at_every_level_and_nothing_outside() {
    let t = Tree::new();
    let before = t.outside_state();
    let d = t.dir();
    let walk = d.remove("a").unwrap();
    assert!(walk.changed > 10 && walk.left == 0, "{walk:?}");
    for name in ["l_dir", "l_file", "l_rel", "f", "d"] {
        d.remove(name).unwrap();
    }
    assert!(d.entries().unwrap().is_empty());
    assert_eq!(t.outside_state(), before);
    assert_eq!(d.remove("not-there").unwrap(), Walk::default(), "gone already is fine");
}

#[test]
fn entries_that_vanish_or_change_type_mid_walk_are_skipped() {
    let t = Tree::new();
    let outside = t.outside.clone();
    let inside = t.inside.clone();
    std::fs::create_dir(inside.join("gone")).unwrap();
    // At the worst moments: `a` becomes a link after it was seen as a directory; `gone` vanishes
    // after it was listed; `f` becomes a link to a file outside after it was looked at.
    let hook = move |dir: &Path, name: &OsStr, at: Point| {
        let p = dir.join(name);
        match (name.to_str(), at) {
            (Some("a"), Point::Looked) if dir == inside && p.is_dir() && !p.is_symlink() => {
                std::fs::rename(&p, inside.join("a.real")).unwrap();
                symlink(&outside, &p).unwrap();
            }
            (Some("gone"), Point::Listed) if dir == inside => std::fs::remove_dir(&p).unwrap(),
            (Some("f"), Point::Looked) if dir == inside && !p.is_symlink() => {
                std::fs::remove_file(&p).unwrap();
                symlink(outside.join("secret"), &p).unwrap();
            }
            _ => {}
        }
    };
    let before = t.outside_state();
    let owner = if unistd::geteuid().is_root() {
        AGENT
    } else {
        Owner { uid: unistd::geteuid().as_raw(), gid: unistd::getegid().as_raw() }
    };
    let walk = with_hook(hook, || t.dir().hand_over(owner)).unwrap();
    assert!(walk.skipped >= 2, "a (now a link) and gone (vanished) were skipped: {walk:?}");
    assert_eq!(t.outside_state(), before, "nothing outside changed");
    assert!(t.inside.join("a").is_symlink() && t.inside.join("a.real").is_dir(), "control: the race happened");

    // The same moments during a removal: the link that replaced `a` goes, nothing it points at.
    std::fs::remove_file(t.inside.join("a")).unwrap();
    std::fs::rename(t.inside.join("a.real"), t.inside.join("a")).unwrap();
    let (inside, outside) = (t.inside.clone(), t.outside.clone());
    let hook = move |dir: &Path, name: &OsStr, at: Point| {
        let p = dir.join(name);
        if name == "a" && at == Point::Looked && dir == inside && p.is_dir() && !p.is_symlink() {
            std::fs::rename(&p, inside.join("a.real")).unwrap();
            symlink(&outside, &p).unwrap();
        }
    };
    with_hook(hook, || t.dir().remove("a")).unwrap();
    assert!(std::fs::symlink_metadata(t.inside.join("a")).is_err(), "the link is removed");
    assert!(t.inside.join("a.real/b/c/f").is_file(), "what was renamed away is left");
    assert_eq!(t.outside_state(), before);
}

#[test]
fn a_thread_swapping_directories_and_links_never_fails_a_walk_or_leads_it_outside() {
    let t = Tree::new();
    let before = t.outside_state();
    let owner = if unistd::geteuid().is_root() {
        AGENT
    } else {
        Owner { uid: unistd::geteuid().as_raw(), gid: unistd::getegid().as_raw() }
    };
    // x is by turns a real directory holding files named like those outside, nothing, and a link
    // to the directory outside; y by turns a file and a link to the file outside.
    let (x, real, link) = (t.inside.join("a/x"), t.inside.join("a/x.real"), t.inside.join("a/x.link"));
    std::fs::create_dir_all(real.join("d")).unwrap();
    for f in ["secret", "f", "d/secret", "d/f"] {
        std::fs::write(real.join(f), "inside").unwrap();
    }
    symlink(&t.outside, &link).unwrap();
    let (y, yf, yl) = (t.inside.join("y"), t.inside.join("y.file"), t.inside.join("y.link"));
    std::fs::write(&yf, "inside").unwrap();
    symlink(t.outside.join("secret"), &yl).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (from, to) in [(&real, &x), (&x, &real), (&link, &x), (&x, &link), (&yf, &y), (&y, &yf)] {
                    let _ = std::fs::rename(from, to);
                }
                let _ = std::fs::rename(&yl, &y);
                let _ = std::fs::rename(&y, &yl);
                swaps += 1;
            }
            swaps
        })
    };
    let start = std::time::Instant::now();
    let mut walks = 0;
    while start.elapsed() < std::time::Duration::from_millis(700) {
        t.dir().hand_over(owner).unwrap_or_else(|e| panic!("walk {walks} failed: {e}"));
        walks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    assert!(swaps > 100 && walks > 10, "control: both ran ({swaps} swaps, {walks} walks)");
    assert_eq!(t.outside_state(), before, "nothing outside changed");
    t.dir().remove("a").unwrap();
    assert_eq!(t.outside_state(), before);
}

#[test]
fn files_are_replaced_or_made_new_and_never_written_through_a_link() {
    let t = Tree::new();
    let before = t.outside_state();
    let d = t.dir();
    // A link and a directory where the file goes are replaced, not followed or filled.
    d.replace_file("l_file", b"fresh", 0o640, None).unwrap();
    d.replace_file("d", b"fresh2", 0o644, None).unwrap();
    let m = std::fs::symlink_metadata(t.inside.join("l_file")).unwrap();
    assert!(m.is_file() && m.mode() & 0o777 == 0o640);
    assert_eq!(std::fs::read_to_string(t.inside.join("l_file")).unwrap(), "fresh");
    assert_eq!(std::fs::read_to_string(t.inside.join("d")).unwrap(), "fresh2");
    // write_new never touches what is there, a link included.
    assert!(!d.write_new("l_dir", b"x", 0o644, None).unwrap());
    assert!(!d.write_new("f", b"x", 0o644, None).unwrap());
    assert_eq!(std::fs::read_to_string(t.inside.join("f")).unwrap(), "inside");
    assert!(d.write_new("new", b"made", 0o604, None).unwrap());
    assert_eq!(std::fs::metadata(t.inside.join("new")).unwrap().mode() & 0o777, 0o604);
    assert!(d.create_file("l_rel", 0o644).is_err());
    // Removing a mount-point file or an empty directory never goes through a link either.
    assert!(!d.remove_file_if("l_dir", |m| !m.is_symlink()).unwrap());
    assert!(!d.remove_empty_dir("l_dir").unwrap());
    assert!(d.remove_file_if("l_dir", |m| m.is_symlink()).unwrap());
    assert_eq!(t.outside_state(), before);
    assert!(!d.entries().unwrap().iter().any(|n| n.to_string_lossy().contains("codex-box")), "no temporary left");
    if as_root("files get their owner") {
        d.replace_file("owned", b"o", 0o644, Some(AGENT)).unwrap();
        d.write_new("owned2", b"o", 0o644, Some(AGENT)).unwrap();
        for f in ["owned", "owned2"] {
            let m = std::fs::metadata(t.inside.join(f)).unwrap();
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (AGENT.uid, AGENT.gid, 0o644), "{f}");
        }
    }
}

#[test]
fn walks_stop_at_max_depth() {
    let t = tempfile::tempdir().unwrap();
    let deep: PathBuf = std::iter::repeat_n("d", MAX_DEPTH + 3).collect();
    std::fs::create_dir_all(t.path().join(&deep)).unwrap();
    let d = Dir::open_trusted(t.path()).unwrap();
    let own = Owner { uid: unistd::geteuid().as_raw(), gid: unistd::getegid().as_raw() };
    assert_eq!(d.hand_over(own).unwrap().too_deep, 1);
    assert_eq!(d.remove("d").unwrap().too_deep, 1);
}
