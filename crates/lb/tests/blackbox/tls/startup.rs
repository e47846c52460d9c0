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

/// The `[tls]` section of a config file, and the expiry warning at load: a certificate within
/// 14 days of its end is logged as a warning with its days left.
#[test]
fn the_config_file_section_serves_tls_and_a_certificate_near_its_end_is_warned_about() {
    let dir = ScratchDir::new("tls-file");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["soon.test".to_string()]).expect("params");
    let (y, m, d) = civil_in_days(5);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let cert = params.self_signed(&key).expect("certificate");
    std::fs::write(dir.join("soon.crt"), cert.pem()).expect("write");
    std::fs::write(dir.join("soon.key"), key.serialize_pem()).expect("write");
    let b = lb_testkit::Backend::start("file");
    let config = dir.join("lb.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\nmin_version = \"1.3\"\n\
             [[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("soon.crt").display(),
            dir.join("soon.key").display()
        ),
    )
    .expect("write config");
    let config = config.display().to_string();
    let routes: &[(&str, &[std::net::SocketAddr])] = &[("/", &[b.addr()])];
    let lb = lb_testkit::LbProcess::start(bin(), &run_args(1, routes, &["--config", &config]));
    let mut conn = super::tls_open(lb.tls_addr(), &super::client(super::BOTH, &[]), None);
    assert_eq!(crate::served_by(&conn.get("/")), "file");
    assert_eq!(
        conn.wire().version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let log = lb.wait_for_stderr(WAIT, &["certificate expires in"]);
    let line = log
        .lines()
        .find(|l| l.contains("certificate expires in"))
        .unwrap_or_default();
    assert!(line.contains("WARN") && line.contains("soon.crt"), "{line}");
    assert!(
        line.contains("days_left=4") || line.contains("days_left=5"),
        "{line}"
    );
}

/// The UTC date `days` from now (Howard Hinnant's `civil_from_days`).
fn civil_in_days(days: u64) -> (i32, u8, u8) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let z = (now / 86_400 + days) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8, day as u8)
}
