//! Session-ticket keys from a file (`--tls-ticket-keys FILE`), so several lb nodes (and every
//! worker of one) resume each other's sessions, and the operator rotates the keys.
//!
//! File format: one key per line, 64 hexadecimal digits (32 random bytes, e.g.
//! `openssl rand -hex 32`); blank lines and lines starting with `#` are ignored. The first key
//! seals new tickets; every key listed opens them. Rotation: put a new key first, keep the
//! previous one below it for a ticket lifetime, then drop it; SIGHUP re-reads the file (a file
//! that cannot be used keeps the keys in force).
//!
//! A ticket is `name (16) || nonce (12) || ChaCha20-Poly1305(state)`, the name being the first
//! 16 bytes of SHA-256 of the key and the additional data of the seal, so a node finds the key
//! for a ticket without trying them all, and two nodes with one file agree on every name.

use crate::TlsError;
use parking_lot::RwLock;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a client may keep a ticket (seconds; the ticket lifetime hint). Keep a rotated-out
/// key in the file at least this long.
pub const TICKET_LIFETIME_SECS: u32 = 12 * 3600;

const NAME_LEN: usize = 16;

/// One key: its name and its sealing key.
struct Key {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

/// The keys of one ticket-key file, swapped whole by [`TicketKeys::reload`].
pub struct TicketKeys {
    path: PathBuf,
    keys: RwLock<Arc<Vec<Key>>>,
    random: SystemRandom,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        write!(
            f,
            "TicketKeys({}, {} keys)",
            self.path.display(),
            self.keys.read().len()
        )
    }
}

impl TicketKeys {
    /// Reads the keys of `path`.
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        Ok(TicketKeys {
            keys: RwLock::new(Arc::new(read_keys(path)?)),
            path: path.to_path_buf(),
            random: SystemRandom::new(),
        })
    }

    /// Re-reads the file; on failure the keys in force stay. Returns how many keys it holds.
    pub fn reload(&self) -> Result<usize, TlsError> {
        let keys = read_keys(&self.path)?;
        let n = keys.len();
        *self.keys.write() = Arc::new(keys);
        Ok(n)
    }
}

fn read_keys(path: &Path) -> Result<Vec<Key>, TlsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))?;
    parse_keys(&text).map_err(|e| TlsError(format!("{}: {e}", path.display())))
}

/// The keys of a ticket-key file's text, first one first.
fn parse_keys(text: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = hex32(line)
            .ok_or_else(|| format!("line {}: expected 64 hexadecimal digits (32 bytes)", i + 1))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let mut name = [0; NAME_LEN];
        name.copy_from_slice(&digest.as_ref()[..NAME_LEN]);
        let aead = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| format!("line {}: not a usable key", i + 1))?;
        keys.push(Key {
            name,
            aead: LessSafeKey::new(aead),
        });
    }
    if keys.is_empty() {
        return Err("no key in it (expected lines of 64 hexadecimal digits)".to_string());
    }
    Ok(keys)
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys.read().clone();
        let key = keys.first()?;
        let mut nonce = [0; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + 16);
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        let mut sealed = plain.to_vec();
        let nonce = Nonce::assume_unique_for_key(nonce);
        key.aead
            .seal_in_place_append_tag(nonce, Aad::from(key.name), &mut sealed)
            .ok()?;
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = cipher.split_at_checked(NAME_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let keys = self.keys.read().clone();
        let key = keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut opened = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(key.name), &mut opened)
            .ok()?;
        let len = plain.len();
        opened.truncate(len);
        Some(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn keys(text: &str) -> TicketKeys {
        TicketKeys {
            path: PathBuf::from("keys"),
            keys: RwLock::new(Arc::new(parse_keys(text).unwrap())),
            random: SystemRandom::new(),
        }
    }

    #[test]
    fn tickets_open_with_any_listed_key_and_seal_with_the_first() {
        let old = keys(A);
        let ticket = old.encrypt(b"session state").unwrap();
        assert_eq!(old.decrypt(&ticket).unwrap(), b"session state");
        // Rotated: B seals now, A still opens the old tickets.
        let rotated = keys(&format!("# new first\n{B}\n\n{A}\n"));
        assert_eq!(rotated.decrypt(&ticket).unwrap(), b"session state");
        let new_ticket = rotated.encrypt(b"x").unwrap();
        assert!(
            old.decrypt(&new_ticket).is_none(),
            "sealed with B, which old does not hold"
        );
        assert_eq!(keys(B).decrypt(&new_ticket).unwrap(), b"x");
        // A node with the same file opens another's tickets.
        assert_eq!(keys(A).decrypt(&ticket).unwrap(), b"session state");
    }

    #[test]
    fn tampered_or_short_tickets_do_not_open() {
        let k = keys(A);
        let mut ticket = k.encrypt(b"state").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(k.decrypt(&ticket).is_none());
        for short in [&[][..], &[0; 16][..], &ticket[..30]] {
            assert!(k.decrypt(short).is_none());
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let cases = [
            ("", "no key"),
            ("# only a comment\n", "no key"),
            ("abcd\n", "line 1: expected 64"),
            (&format!("{A}\n{}zz\n", &B[..62]), "line 2: expected 64"),
        ];
        for (text, want) in cases {
            let error = parse_keys(text).map(|_| ()).unwrap_err();
            assert!(error.contains(want), "{text:?}: {error}");
        }
    }
}
