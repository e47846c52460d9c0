//! Settings that say what is wrong (issue 10 points 4, 8, 9, 11): durations with units on the
//! flags, errors that name the flag or key, the value and what would be accepted, TOML syntax
//! errors in plain words with line and column, duplicate prefixes, and the admin token file.

use crate::{bin, lb, WAIT};
use lb_testkit::{run_to_exit, ScratchDir};

/// `lb run ARGS` on port 0 until it exits; it must exit 2 with every needle on stderr and
/// nothing on stdout.
fn refused(args: &[&str], needles: &[&str]) {
    let mut all = vec!["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let f = run_to_exit(bin(), &all, WAIT);
    assert_eq!(f.status.code(), Some(2), "{args:?}: {}", f.stderr);
    for needle in needles {
        assert!(
            f.stderr.contains(needle),
            "{args:?}: stderr lacks {needle:?}:\n{}",
            f.stderr
        );
    }
    assert!(f.stdout.is_empty(), "{args:?}: {:?}", f.stdout);
}

#[test]
fn duration_flags_take_units_and_refuse_what_they_cannot_read() {
    let lb = lb(
        1,
        &[],
        &[
            "--connect-timeout",
            "5s",
            "--upstream-timeout",
            "2m",
            "--idle-timeout",
            "250ms",
            "--drain-timeout",
            "1500",
        ],
    );
    assert_eq!(lb.workers(), 1);
    refused(
        &["--connect-timeout", "5x"],
        &[
            "'--connect-timeout <DURATION>'",
            "invalid duration \"5x\" (expected e.g. 250ms, 5s, 2m or milliseconds)",
        ],
    );
    refused(
        &["--health-interval", "0s"],
        &[
            "--health-interval",
            "invalid duration \"0s\": must be greater than 0",
        ],
    );
}

#[test]
fn errors_name_the_value_and_what_is_accepted() {
    refused(
        &["--route", "/api=10.0.0.1"],
        &["--route", "invalid target \"10.0.0.1\" (expected HOST:PORT"],
    );
    refused(
        &["--max-body", "1MiB"],
        &["'--max-body <BYTES>': invalid size \"1MiB\" (expected a whole number of bytes)"],
    );
    refused(
        &["--backlog", "0"],
        &["'--backlog <N>': invalid number \"0\" (expected a whole number of at least 1)"],
    );
    refused(
        &["--route", "/a=127.0.0.1:1", "--route", "/a/=127.0.0.1:2"],
        &["--route /a and --route /a/ name the same prefix"],
    );
    let f = run_to_exit(bin(), &["run", "--listen", "localhost:0"], WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(
        f.stderr
            .contains("'--listen <ADDR>': invalid address \"localhost:0\" (expected IP:PORT"),
        "{}",
        f.stderr
    );
    let dir = ScratchDir::new("config-errors");
    let file = dir.join("lb.toml");
    let path = file.to_str().expect("utf-8");
    let cases = [
        (
            "listen = 127.0.0.1:8080\n",
            "lb.toml line 1, column 15: not valid TOML (invalid float, expected nothing) in \
             `listen = 127.0.0.1:8080`; text needs double quotes: listen = \"127.0.0.1:8080\"",
        ),
        (
            "admin = \"localhost:8081\"\n",
            "lb.toml line 1, key `admin`: invalid address \"localhost:8081\" (expected IP:PORT",
        ),
        (
            "[[route]]\nprefix = \"/a\"\ntargets = [\"10.0.0.1:80\", \"10.0.0.2\"]\n",
            "lb.toml line 3, key `targets`: invalid target \"10.0.0.2\" (expected HOST:PORT",
        ),
        (
            "[timeouts]\nconnect = \"5x\"\n",
            "lb.toml line 2, key `connect`: invalid duration \"5x\" (expected e.g. 250ms, 5s, 2m or milliseconds)",
        ),
        (
            "[[route]]\nprefix = \"/a\"\ntargets = [\"10.0.0.1:80\"]\n\n\
             [[route]]\nprefix = \"/a/\"\ntargets = [\"10.0.0.2:80\"]\n",
            "lb.toml line 6: route prefix \"/a/\" is the same prefix as \"/a\" of the route at line 2",
        ),
        (
            "[[route]]\nprefix = \"/b\"\ntargets = [\"10.0.0.1:80\"]\n\
             [[route]]\nprefix = \"/b\"\ntargets = [\"10.0.0.2:80\"]\n",
            "lb.toml line 5: route prefix \"/b\" is the same prefix as \"/b\" of the route at line 2",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&file, text).unwrap();
        refused(&["--config", path], &[needle]);
    }
}

#[test]
fn the_admin_token_can_come_from_a_file() {
    let dir = ScratchDir::new("token-file");
    let token = dir.join("token");
    std::fs::write(&token, "s3cr3t-file\n").unwrap();
    let lb = lb(
        1,
        &[],
        &["--admin-token-file", token.to_str().expect("utf-8")],
    );
    let admin = lb.admin();
    assert_eq!(admin.call("GET", "/targets", b"").status, 401);
    let auth = lb_testkit::send_raw(
        admin.addr(),
        &lb_testkit::request(
            "GET",
            "/targets",
            &[
                ("Authorization", "Bearer s3cr3t-file"),
                ("Connection", "close"),
            ],
            b"",
        ),
    );
    assert_eq!(
        auth.status, 200,
        "the file's content without its newline is the token"
    );

    let missing = dir.join("missing");
    refused(
        &["--admin-token-file", missing.to_str().expect("utf-8")],
        &["admin token file", "missing: no such file or directory"],
    );
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    refused(
        &["--admin-token-file", empty.to_str().expect("utf-8")],
        &["is empty"],
    );
    refused(
        &[
            "--admin-token",
            "t",
            "--admin-token-file",
            token.to_str().expect("utf-8"),
        ],
        &["--admin-token-file", "cannot be used with", "--admin-token"],
    );
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            "admin_token_file = \"{}\"\nadmin_token = \"x\"\n",
            token.display()
        ),
    )
    .unwrap();
    refused(
        &["--config", file.to_str().expect("utf-8")],
        &["admin_token and admin_token_file are both set"],
    );
}
