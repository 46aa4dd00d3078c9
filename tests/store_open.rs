//! Opening the store: permissions, and the one-line errors for a store that is locked, corrupt or
//! written by a newer perch.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use perch::store::{STORE_FORMAT, Store, StoreError, keys};

#[cfg(unix)]
#[test]
fn store_directory_is_0700_and_its_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = Store::open(&dir).unwrap();
    store.flush().unwrap();
    fn check(path: &std::path::Path) {
        let meta = std::fs::metadata(path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            for e in std::fs::read_dir(path).unwrap() {
                check(&e.unwrap().path());
            }
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }
    check(&dir);
    assert!(
        dir.join("db").exists(),
        "sled's files live in the directory"
    );
}

#[test]
fn second_open_in_the_same_process_is_locked_and_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let _held = Store::open(tmp.path()).unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("in use by another perch"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

/// Not a test on its own: the child half of `store_held_by_another_process_is_locked`, run in a
/// separate process. It holds the store until its stdin closes.
#[test]
#[ignore = "run by store_held_by_another_process_is_locked in a child process"]
fn child_holds_store_until_stdin_closes() {
    let Some(dir) = std::env::var_os("PERCH_TEST_HOLD_STORE") else {
        return;
    };
    let _store = Store::open(std::path::Path::new(&dir)).unwrap();
    println!("HOLDING");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn store_held_by_another_process_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_store_until_stdin_closes",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERCH_TEST_HOLD_STORE", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut saw_holding = false;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if line.contains("HOLDING") {
            saw_holding = true;
            break;
        }
        line.clear();
    }
    assert!(saw_holding, "the child process never opened the store");
    let err = Store::open(tmp.path()).unwrap_err();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&tmp.path().display().to_string()));
    assert!(status.success(), "child failed: {status}");
    // Once the other process is gone, the store opens again.
    Store::open(tmp.path()).unwrap();
}

#[test]
fn garbage_in_the_data_file_is_corrupt_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tmp.path().join("db"), &garbage).unwrap();
    std::fs::write(tmp.path().join("conf"), &garbage[..100]).unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "expected Corrupt, got {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("move it aside"), "{msg}");
    // Keeping a copy comes before any advice that could lose the data.
    assert!(
        msg.find("keep a copy")
            .is_some_and(|k| k < msg.find("move it aside").unwrap()),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn a_file_where_the_directory_should_be_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("not-a-dir");
    std::fs::write(&path, b"hello").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_sled_database_that_is_not_a_perch_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = sled::open(tmp.path()).unwrap();
        db.insert(b"someone else's key", b"value").unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn store_written_by_a_newer_perch_is_refused_with_upgrade_advice() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    {
        let db = sled::open(tmp.path()).unwrap();
        db.insert(keys::FORMAT_KEY, &[STORE_FORMAT + 1]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(tmp.path()).unwrap_err();
    match &err {
        StoreError::NewerVersion {
            found, supported, ..
        } => {
            assert_eq!(*found, STORE_FORMAT + 1);
            assert_eq!(*supported, STORE_FORMAT);
        }
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("upgrade perch"), "{msg}");
}

#[test]
fn reopening_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = Store::open(tmp.path()).unwrap();
        let mut a = perch::domain::Account::new(
            "1".into(),
            "x".into(),
            "X".into(),
            None,
            chrono::Utc::now(),
        );
        a.id = uuid::Uuid::from_u128(5);
        store.put_account(&a).unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    assert!(store.account(uuid::Uuid::from_u128(5)).unwrap().is_some());
}

#[test]
fn damaged_data_file_of_a_real_store_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = Store::open(tmp.path()).unwrap();
        let mut a = perch::domain::Account::new(
            "1".into(),
            "x".into(),
            "X".into(),
            None,
            chrono::Utc::now(),
        );
        a.id = uuid::Uuid::from_u128(5);
        store.put_account(&a).unwrap();
        store.flush().unwrap();
    }
    let db = tmp.path().join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut() {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&db, &bytes).unwrap();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("snap.")
        {
            std::fs::write(&p, b"not a snapshot").unwrap();
        }
    }
    // Never a panic, and never a silently empty store.
    let err = Store::open(tmp.path()).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}
