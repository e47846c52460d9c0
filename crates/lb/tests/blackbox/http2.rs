//! HTTP/2 towards clients (SPEC part B "HTTP/2 towards clients", issue 12), over clear text with
//! prior knowledge (h2c): every stream one request, routed, picked and forwarded as HTTP/1.1
//! exactly like an HTTP/1.1 request; lb's own errors, resets and limits per stream; floods that
//! end the abusive connection; GOAWAY on drain; h2spec conformance.

pub mod conformance;
mod floods;
mod limits;
mod observability;
mod requests;
mod streams;
