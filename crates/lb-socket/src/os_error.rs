//! OS errors in the words lb's messages use: one sentence part, lower case, without the
//! `(os error N)` suffix, so that "cannot listen on 0.0.0.0:80: permission denied" reads the same
//! whatever the call that failed.

use std::io;

/// An OS error in plain words, e.g. "address already in use".
pub fn plain(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = error.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}
