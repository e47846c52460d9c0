//! Every decision an exchange makes about its connections, as plain functions over plain values:
//! may a failed attempt be tried again, and where; does the client connection stay open after an
//! answer; how much of the client's input a request consumed.
//!
//! Invariant: exactly one answer per request, and the client connection either stays in sync
//! (every byte of this request consumed, nothing of the next one) or closes. The connection loop
//! (`h1`) calls these functions at one place each and does what they say; nothing else decides.
//! Nothing here does I/O or reads a clock, so every rule is pinned down by a table test.

use lb_http::{BodyKind, ErrorKind, Source};

/// How far an upstream attempt got before it failed, for [`retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection was made (refused, unreachable, timed out): nothing of the request left lb.
    Connect,
    /// The connection closed (or reset) before a single response byte, and no interim response
    /// had been passed on: the request may or may not have been seen.
    ClosedEarly,
}

/// What is known of the attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The connection came from the pool (it may have gone stale while idle).
    pub(crate) reused: bool,
    /// The request has no body: sending it again costs nothing and needs no client bytes.
    pub(crate) bodiless: bool,
    /// RFC 9110 §9.2.2: sending it twice has the effect of sending it once.
    pub(crate) idempotent: bool,
    /// How many more targets the request may still be sent on to (the route's `retries`,
    /// less the moves made): at 0 it goes nowhere else.
    pub(crate) moves_left: u8,
}

/// Where a failed attempt goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The same target on a new connection: a pooled connection went stale.
    Fresh,
    /// The route's next healthy target in round-robin order, as of the registry now (the target
    /// that failed to connect has just been marked down).
    Reroute,
    /// The route's next target in the snapshot the request was routed with (the target
    /// accepted the connection, so it is not marked down; nginx's `proxy_next_upstream error`).
    NextTarget,
    /// No retry: the client gets the failure it met.
    Answer,
}

/// May a failed attempt be retried, and where. A request whose body has started to flow is never
/// retried (its bytes are gone); a stale pooled connection is worth one fresh connection; a
/// target that could not be reached sends the request, untouched, to the next one.
pub(crate) fn retry(failure: Failure, attempt: Attempt) -> Retry {
    match failure {
        Failure::Connect if attempt.moves_left > 0 => Retry::Reroute,
        Failure::Connect => Retry::Answer,
        Failure::ClosedEarly if attempt.reused && attempt.bodiless => Retry::Fresh,
        Failure::ClosedEarly
            if attempt.bodiless && attempt.idempotent && attempt.moves_left > 0 =>
        {
            Retry::NextTarget
        }
        Failure::ClosedEarly => Retry::Answer,
    }
}

/// How much of the client's input a request head consumed, decided the moment its parse ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consumed {
    /// The head was understood: these bytes are its, and the body (if any) follows them.
    Head(usize),
    /// The head was not understood (invalid, oversized, incomplete at its deadline): where the
    /// next request would start is unknown, so the connection must close after the answer.
    Unknown,
}

/// How much input a head took: its length when it parsed, [`Consumed::Unknown`] when it did not.
pub(crate) fn consumed(parsed: Option<usize>) -> Consumed {
    parsed.map_or(Consumed::Unknown, Consumed::Head)
}

/// What became of the request body on the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// The request had none, or all of it was read.
    Done,
    /// Some or none of it was read: the rest is still on the connection.
    Unread,
}

impl Body {
    /// The state of a body of framing `kind` that nobody has read yet.
    pub(crate) fn unread(kind: BodyKind) -> Self {
        if kind == BodyKind::Empty {
            Body::Done
        } else {
            Body::Unread
        }
    }
}

/// How the answer to a request ended on the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// lb answers with its own response for a fault of this kind.
    Own(ErrorKind),
    /// The upstream's response was passed on.
    Relayed {
        /// Its body reached the client whole.
        complete: bool,
        /// Its head told the client the connection closes.
        close: bool,
        /// Its body is delimited by closing the connection (close-delimited upstream body, or a
        /// chunked body de-chunked for an HTTP/1.0 client).
        close_delimited: bool,
    },
    /// The connection became a two-way tunnel (`101 Switching Protocols`).
    Tunnel,
    /// The client went away (or stopped reading): nobody to answer.
    ClientGone,
}

/// Everything [`next`] needs to know about one request's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct End {
    /// What the head took of the input.
    pub(crate) head: Consumed,
    /// What became of the body.
    pub(crate) body: Body,
    /// The client's request allows keep-alive (its version and `Connection` field).
    pub(crate) keep_alive: bool,
    /// The worker is draining: every connection closes after its current answer.
    pub(crate) draining: bool,
    /// How the answer ended.
    pub(crate) answer: Answer,
}

/// What the client connection does after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read the next request: every byte of this one is consumed.
    KeepAlive,
    /// Close: the byte stream is out of sync, or either side asked for the close.
    Close,
}

/// Does the client connection stay open after this answer. It does only when the input is in
/// sync (head understood, body read) and both sides allow it. For lb's own answers the decision
/// is made before writing, so the answer says `Connection: close` exactly when it closes.
pub(crate) fn next(end: End) -> Next {
    let in_sync = end.head != Consumed::Unknown && end.body == Body::Done;
    let answered_cleanly = match end.answer {
        // A client fault leaves the rest of the byte stream untrustworthy (docs/http.md).
        Answer::Own(kind) => kind.keeps_connection(),
        Answer::Relayed {
            complete,
            close,
            close_delimited,
        } => complete && !close && !close_delimited,
        Answer::Tunnel | Answer::ClientGone => false,
    };
    if in_sync && answered_cleanly && end.keep_alive && !end.draining {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Whether closing after this answer should first drain what the client may still be sending:
/// `buffered` says input past this request is already read. Closing a socket with unread input
/// makes the kernel send a reset, which may destroy the answer before the client has read it;
/// so lb shuts its side down and discards the rest for a short while (nginx's lingering close).
/// A clean `Connection: close` exchange left nothing unread and closes at once.
pub(crate) fn lingers(end: End, buffered: bool) -> bool {
    next(end) == Next::Close
        && end.answer != Answer::ClientGone
        && (end.head == Consumed::Unknown || end.body == Body::Unread || buffered)
}

/// Whether the final response head tells the client the connection stays open: only when the
/// client allows it, no drain has begun, and the answer does not arrive before a body the client
/// was told to hold back (`Expect: 100-continue` answered with a final status: the body's fate
/// is unknown on the connection).
pub(crate) fn response_keeps_alive(keep_alive: bool, draining: bool, before_body: bool) -> bool {
    keep_alive && !draining && !before_body
}

/// How loudly lb's own answer is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loudness {
    /// DEBUG: the client's doing, or a path nobody routes (a scanner's probe, a typo). The
    /// access log still has the request; an INFO line each would drown the faults that matter.
    Quiet,
    /// INFO: an upstream failed, or a routed prefix has no target: an operator wants to see it.
    Loud,
}

/// How loudly lb's own answer of kind `kind` is logged.
pub(crate) fn loudness(kind: ErrorKind) -> Loudness {
    match kind.source() {
        Source::Client => Loudness::Quiet,
        Source::Routing if kind == ErrorKind::NoRoute => Loudness::Quiet,
        Source::Routing | Source::Upstream => Loudness::Loud,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Attempt = Attempt {
        reused: false,
        bodiless: true,
        idempotent: true,
        moves_left: 1,
    };

    #[test]
    fn retry_table() {
        // `moved`: the request went to another target already, and the route allows one move
        // (the default `retries = 1`).
        let with = |reused, bodiless, idempotent, moved: bool| Attempt {
            reused,
            bodiless,
            idempotent,
            moves_left: u8::from(!moved),
        };
        let table = [
            // Refused, unreachable or timed out: nothing was sent; try the next healthy target once.
            (Failure::Connect, FRESH, Retry::Reroute),
            (
                Failure::Connect,
                with(false, false, false, false),
                Retry::Reroute,
            ),
            (
                Failure::Connect,
                with(true, false, false, false),
                Retry::Reroute,
            ),
            (
                Failure::Connect,
                with(false, true, true, true),
                Retry::Answer,
            ),
            // A reused connection that was reset before a byte: stale; one fresh connection.
            (
                Failure::ClosedEarly,
                with(true, true, false, false),
                Retry::Fresh,
            ),
            (
                Failure::ClosedEarly,
                with(true, true, true, true),
                Retry::Fresh,
            ),
            // A fresh connection reset before a byte: the next target, for idempotent requests.
            (Failure::ClosedEarly, FRESH, Retry::NextTarget),
            (
                Failure::ClosedEarly,
                with(false, true, false, false),
                Retry::Answer,
            ),
            (
                Failure::ClosedEarly,
                with(false, true, true, true),
                Retry::Answer,
            ),
            // A body has started to flow: never again.
            (
                Failure::ClosedEarly,
                with(true, false, true, false),
                Retry::Answer,
            ),
            (
                Failure::ClosedEarly,
                with(false, false, true, false),
                Retry::Answer,
            ),
        ];
        for (failure, attempt, want) in table {
            assert_eq!(retry(failure, attempt), want, "{failure:?} {attempt:?}");
        }
        // `retries = 2` allows a second move; `retries = 0` none, a fresh connection still.
        let left = |moves_left| Attempt {
            moves_left,
            ..FRESH
        };
        assert_eq!(retry(Failure::Connect, left(2)), Retry::Reroute);
        assert_eq!(retry(Failure::ClosedEarly, left(2)), Retry::NextTarget);
        assert_eq!(retry(Failure::Connect, left(0)), Retry::Answer);
        assert_eq!(retry(Failure::ClosedEarly, left(0)), Retry::Answer);
        let stale = Attempt {
            reused: true,
            moves_left: 0,
            ..FRESH
        };
        assert_eq!(retry(Failure::ClosedEarly, stale), Retry::Fresh);
    }

    #[test]
    fn a_head_consumes_its_length_or_leaves_the_stream_unknown() {
        assert_eq!(consumed(Some(37)), Consumed::Head(37));
        assert_eq!(consumed(None), Consumed::Unknown);
        assert_eq!(Body::unread(BodyKind::Empty), Body::Done);
        assert_eq!(Body::unread(BodyKind::Length(5)), Body::Unread);
        assert_eq!(Body::unread(BodyKind::Chunked), Body::Unread);
    }

    /// A request that parsed, had no body and allows keep-alive, answered in `answer`.
    fn bodiless(answer: Answer) -> End {
        End {
            head: Consumed::Head(20),
            body: Body::Done,
            keep_alive: true,
            draining: false,
            answer,
        }
    }

    const RELAYED: Answer = Answer::Relayed {
        complete: true,
        close: false,
        close_delimited: false,
    };

    /// Every fault kind of the issue, and the clean cases around them.
    #[test]
    fn next_table() {
        use ErrorKind::*;
        let unparsed = |kind| End {
            head: Consumed::Unknown,
            body: Body::Unread,
            ..bodiless(Answer::Own(kind))
        };
        let unread = |answer| End {
            body: Body::Unread,
            ..bodiless(answer)
        };
        let table = [
            ("relayed, complete", bodiless(RELAYED), Next::KeepAlive),
            // Upstream faults on a bodiless request: the stream is in sync.
            (
                "refused",
                bodiless(Answer::Own(UpstreamConnect)),
                Next::KeepAlive,
            ),
            (
                "reset",
                bodiless(Answer::Own(UpstreamReset)),
                Next::KeepAlive,
            ),
            (
                "connect timed out",
                bodiless(Answer::Own(ConnectTimeout)),
                Next::KeepAlive,
            ),
            (
                "answer timed out",
                bodiless(Answer::Own(UpstreamTimeout)),
                Next::KeepAlive,
            ),
            (
                "invalid response",
                bodiless(Answer::Own(UpstreamInvalid)),
                Next::KeepAlive,
            ),
            ("no route", bodiless(Answer::Own(NoRoute)), Next::KeepAlive),
            (
                "no healthy target",
                bodiless(Answer::Own(NoTarget)),
                Next::KeepAlive,
            ),
            // The same with the body still on the connection: close.
            (
                "refused, body unread",
                unread(Answer::Own(UpstreamConnect)),
                Next::Close,
            ),
            (
                "no route, body unread",
                unread(Answer::Own(NoRoute)),
                Next::Close,
            ),
            (
                "no target, body unread",
                unread(Answer::Own(NoTarget)),
                Next::Close,
            ),
            (
                "timed out, body unread",
                unread(Answer::Own(UpstreamTimeout)),
                Next::Close,
            ),
            ("relayed, body unread", unread(RELAYED), Next::Close),
            // The head was not understood.
            ("invalid head", unparsed(BadRequest), Next::Close),
            ("oversized head", unparsed(HeadersTooLarge), Next::Close),
            ("request line too long", unparsed(UriTooLong), Next::Close),
            ("head timed out", unparsed(HeaderTimeout), Next::Close),
            // Client faults in a head that parsed.
            (
                "body too large",
                bodiless(Answer::Own(BodyTooLarge)),
                Next::Close,
            ),
            (
                "CONNECT",
                bodiless(Answer::Own(NotImplemented)),
                Next::Close,
            ),
            ("bad chunk", bodiless(Answer::Own(BadRequest)), Next::Close),
            // Answers that end the connection.
            ("client gone", bodiless(Answer::ClientGone), Next::Close),
            ("tunnel", bodiless(Answer::Tunnel), Next::Close),
            (
                "relay cut short",
                bodiless(Answer::Relayed {
                    complete: false,
                    close: false,
                    close_delimited: false,
                }),
                Next::Close,
            ),
            (
                "response said close",
                bodiless(Answer::Relayed {
                    complete: true,
                    close: true,
                    close_delimited: false,
                }),
                Next::Close,
            ),
            (
                "close-delimited body",
                bodiless(Answer::Relayed {
                    complete: true,
                    close: false,
                    close_delimited: true,
                }),
                Next::Close,
            ),
            // Either side asked for the close.
            (
                "client asked to close",
                End {
                    keep_alive: false,
                    ..bodiless(RELAYED)
                },
                Next::Close,
            ),
            (
                "draining",
                End {
                    draining: true,
                    ..bodiless(Answer::Own(NoRoute))
                },
                Next::Close,
            ),
        ];
        for (case, end, want) in table {
            assert_eq!(next(end), want, "{case}");
        }
    }

    #[test]
    fn lingers_table() {
        let closing = End {
            keep_alive: false,
            ..bodiless(RELAYED)
        };
        let table = [
            ("kept alive", bodiless(RELAYED), true, false),
            ("clean close", closing, false, false),
            ("pipelined bytes behind a close", closing, true, true),
            (
                "head not understood",
                End {
                    head: Consumed::Unknown,
                    ..bodiless(Answer::Own(ErrorKind::BadRequest))
                },
                false,
                true,
            ),
            (
                "body left unread",
                End {
                    body: Body::Unread,
                    ..bodiless(Answer::Own(ErrorKind::NoRoute))
                },
                false,
                true,
            ),
            ("client gone", bodiless(Answer::ClientGone), true, false),
        ];
        for (case, end, buffered, want) in table {
            assert_eq!(lingers(end, buffered), want, "{case}");
        }
    }

    #[test]
    fn the_final_head_says_keep_alive_only_when_nothing_stands_against_it() {
        assert!(response_keeps_alive(true, false, false));
        for (keep_alive, draining, before_body) in [
            (false, false, false),
            (true, true, false),
            (true, false, true),
            (false, true, true),
        ] {
            assert!(
                !response_keeps_alive(keep_alive, draining, before_body),
                "{keep_alive} {draining} {before_body}"
            );
        }
    }

    #[test]
    fn loudness_table() {
        use ErrorKind::*;
        let table = [
            (BadRequest, Loudness::Quiet),
            (HeaderTimeout, Loudness::Quiet),
            (BodyTooLarge, Loudness::Quiet),
            (NotImplemented, Loudness::Quiet),
            (NoRoute, Loudness::Quiet),
            (NoTarget, Loudness::Loud),
            (UpstreamConnect, Loudness::Loud),
            (UpstreamReset, Loudness::Loud),
            (UpstreamInvalid, Loudness::Loud),
            (ConnectTimeout, Loudness::Loud),
            (UpstreamTimeout, Loudness::Loud),
        ];
        for (kind, loudness) in table {
            assert_eq!(super::loudness(kind), loudness, "{kind:?}");
        }
    }
}
