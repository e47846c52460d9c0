//! TLS settings that cannot work stop lb at start with exit code 2 and one sentence naming
//! the setting or the file, before any socket is bound.

use super::{make_cert, tls_flags};
use crate::bin;
use lb_testkit::{run_args, run_to_exit, ScratchDir, WAIT};

#[test]
fn bad_tls_settings_are_start_up_errors_naming_the_file() {
    let dir = ScratchDir::new("tls-startup");
    let a = make_cert(&dir, "a", &["a.test"]);
    let b = make_cert(&dir, "b", &["b.test"]);
    let mismatched = super::CertFiles {
        key: b.key.clone(),
        ..a.clone()
    };
    let missing = super::CertFiles {
        cert: dir.join("missing.crt"),
        ..a.clone()
    };
    let key_file = a.key.display().to_string();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            tls_flags(&[&mismatched]),
            format!("{}: cannot use this key", b.key.display()),
        ),
        (
            tls_flags(&[&missing]),
            format!("cannot read {}", missing.cert.display()),
        ),
        (
            vec!["--tls-listen".into(), "127.0.0.1:0".into()],
            "needs at least one certificate".into(),
        ),
        (
            vec!["--tls-cert".into(), a.cert.display().to_string()],
            "1 --tls-cert and 0 --tls-key".into(),
        ),
        (
            [
                &tls_flags(&[&a])[..],
                &["--tls-min-version".into(), "1.1".into()],
            ]
            .concat(),
            "1.1".into(),
        ),
        (
            [
                &tls_flags(&[&a])[..],
                &["--tls-ticket-keys".into(), key_file],
            ]
            .concat(),
            "expected 64 hexadecimal digits".into(),
        ),
    ];
    for (flags, want) in cases {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let f = run_to_exit(bin(), &run_args(1, &[], &flags), WAIT);
        assert_eq!(f.status.code(), Some(2), "{flags:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(&want),
            "{flags:?}: wanted {want:?} in {}",
            f.stderr
        );
        assert!(f.stdout.is_empty(), "{flags:?}: no ready line");
    }
}

/// `lb check` reads the certificates as a start would: a mismatched key fails the check, a good
/// set is listed.
#[test]
fn check_reads_the_certificates() {
    let dir = ScratchDir::new("tls-check");
    let a = make_cert(&dir, "a", &["a.test"]);
    let b = make_cert(&dir, "b", &["b.test"]);
    let mut args = vec!["check".to_string()];
    args.extend(tls_flags(&[&a]));
    let f = run_to_exit(bin(), &args, WAIT);
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    let out = f.stdout.join("\n");
    assert!(
        out.contains("tls: listen 127.0.0.1:0, min version 1.2, 1 certificates"),
        "{out}"
    );
    let mismatched = super::CertFiles {
        key: b.key.clone(),
        ..a.clone()
    };
    let mut args = vec!["check".to_string()];
    args.extend(tls_flags(&[&mismatched]));
    let f = run_to_exit(bin(), &args, WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(
        f.stderr.contains(&b.key.display().to_string()),
        "{}",
        f.stderr
    );
}
