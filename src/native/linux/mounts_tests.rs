use super::*;

fn kinds(dirs: &'static [&'static str], files: &'static [&'static str]) -> impl Fn(&Path) -> Option<Kind> {
    move |p: &Path| {
        let s = p.to_str().unwrap();
        if dirs.contains(&s) {
            Some(Kind::Dir)
        } else if files.contains(&s) {
            Some(Kind::File)
        } else {
            None
        }
    }
}

#[test]
fn protected_and_hidden_paths() {
    let fs = FsPolicy {
        read_roots: vec!["/".into()],
        write_roots: vec!["/w".into()],
        protected: vec!["/w/.git".into(), "/w/.codex".into(), "/elsewhere/.git".into()],
        deny_read: vec!["/h/.ssh".into(), "/h/.netrc".into(), "/h/.aws".into()],
        shared_tmp: true,
    };
    let k = kinds(&["/w", "/w/.git", "/h/.ssh", "/elsewhere/.git"], &["/h/.netrc"]);
    let p = plan(&fs, Path::new("/w"), true, &k);
    assert_eq!(
        p.ops,
        vec![
            Op::ReadOnly("/w/.git".into()),
            Op::HideFile("/h/.netrc".into()),
            Op::HideDir("/h/.ssh".into()),
            Op::PrivateShm,
            Op::Proc,
        ]
    );
    assert_eq!(placeholders(&fs, &k), vec![PathBuf::from("/w/.codex")]);
}

#[test]
fn paths_below_a_hidden_directory_are_not_mounted_again() {
    let fs = FsPolicy {
        deny_read: vec!["/h/.config/gh".into(), "/h/.config".into(), "/h/.config/x.json".into()],
        shared_tmp: true,
        ..FsPolicy::default()
    };
    let k = kinds(&["/h/.config", "/h/.config/gh"], &["/h/.config/x.json"]);
    assert_eq!(plan(&fs, Path::new("/w"), false, &k).ops, vec![Op::HideDir("/h/.config".into())]);
}

#[test]
fn private_tmp_binds_back_roots_below_tmp() {
    let fs = FsPolicy {
        read_roots: vec!["/".into()],
        write_roots: vec!["/tmp/a/work".into(), "/tmp/a/work/sub".into(), "/tmp".into()],
        protected: vec!["/tmp/a/work/.git".into()],
        deny_read: vec!["/tmp/other/.ssh".into()],
        shared_tmp: false,
    };
    let k = kinds(&["/tmp/a/work", "/tmp/a/work/sub", "/tmp/a/work/.git", "/tmp/other/.ssh"], &[]);
    let p = plan(&fs, Path::new("/tmp/a/work"), false, &k);
    assert_eq!(
        p.ops,
        vec![
            Op::Hold { slot: 0, path: "/tmp/a/work".into() },
            Op::PrivateTmp,
            Op::MkDir("/tmp/a".into()),
            Op::MkDir("/tmp/a/work".into()),
            Op::BindHost { src: 0, target: "/tmp/a/work".into(), readonly: false },
            Op::ReadOnly("/tmp/a/work/.git".into()),
        ]
    );
}

#[test]
fn read_only_cwd_below_tmp_stays_visible_read_only() {
    let fs = FsPolicy { read_roots: vec!["/".into()], ..FsPolicy::default() };
    let k = kinds(&["/tmp/x"], &[]);
    let p = plan(&fs, Path::new("/tmp/x"), false, &k);
    assert!(p.ops.contains(&Op::BindHost { src: 0, target: "/tmp/x".into(), readonly: true }));
}

#[test]
fn fd_paths_are_formatted_without_allocating() {
    let mut buf = [0u8; 32];
    assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
    assert_eq!(fd_path(1234, &mut buf), c"/proc/self/fd/1234");
}
