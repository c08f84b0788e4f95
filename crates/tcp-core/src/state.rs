//! The connection states of RFC 9293 section 3.3.2.

use core::fmt;

/// A connection state (RFC 9293 section 3.3.2, figure 5).
///
/// Which application calls each state allows is documented on the
/// [`Endpoint`](crate::Endpoint) methods; which segments each state accepts is
/// in the `conn::input` module, quoting RFC 9293 section 3.10.7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// "represents no connection state at all". A handle reports it after the
    /// connection ended (reset, timed out) until the application closes it.
    Closed,
    /// "waiting for a connection request from any remote TCP peer and port".
    Listen,
    /// "waiting for a matching connection request after having sent a
    /// connection request".
    SynSent,
    /// "waiting for a confirming connection request acknowledgment after having
    /// both received and sent a connection request".
    SynReceived,
    /// "an open connection, data received can be delivered to the user".
    Established,
    /// "waiting for a connection termination request from the remote TCP peer,
    /// or an acknowledgment of the connection termination request previously
    /// sent".
    FinWait1,
    /// "waiting for a connection termination request from the remote TCP peer".
    FinWait2,
    /// "waiting for a connection termination request from the local user".
    CloseWait,
    /// "waiting for a connection termination request acknowledgment from the
    /// remote TCP peer".
    Closing,
    /// "waiting for an acknowledgment of the connection termination request
    /// previously sent to the remote TCP peer".
    LastAck,
    /// "waiting for enough time to pass to be sure the remote TCP peer received
    /// the acknowledgment of its connection termination request" (2 * MSL).
    TimeWait,
}

impl State {
    /// The synchronized states (RFC 9293 section 3.5.2): every state after the
    /// three-way handshake completed.
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// States in which data from the peer is still accepted (the peer has not
    /// sent FIN).
    pub(crate) fn receives_data(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    /// States in which we may still send data (ours or retransmissions).
    pub(crate) fn sends_data(self) -> bool {
        matches!(
            self,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        };
        f.write_str(s)
    }
}
