//! Stable error codes shared by server and client.

/// The reason a request failed. The numbers are stable: a code is never reused for another
/// meaning, and new codes are added at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame or request could not be decoded or failed validation.
    Malformed = 1,
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion = 2,
    /// The token is missing or not known.
    Unauthenticated = 3,
    /// The token's role does not allow the operation.
    Forbidden = 4,
    /// A protocol or server limit was passed; the message names it and its value.
    LimitExceeded = 5,
    /// A field is invalid; the message names the field, the value and the limit.
    InvalidArgument = 6,
    /// A named SKU, location, channel, position, reservation or pickup store does not
    /// exist.
    NotFound = 7,
    /// The id was used before with different content.
    IdReused = 8,
    /// The request conflicts with the current state (units not in the needed state,
    /// a deadline earlier than the current one, stock below zero).
    Conflict = 9,
    /// The write-ahead log failed; the server refuses changes until restarted.
    Unavailable = 10,
    /// The server is shutting down.
    ShuttingDown = 11,
    /// An error the server did not expect. The message gives details.
    Internal = 12,
    /// The destination's postal code is not in the postal-code table and no region
    /// prefix in it covers the code: the address needs fixing, not the configuration.
    UnknownDestination = 13,
}

impl ErrorCode {
    /// Every code, in number order.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::Malformed,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::LimitExceeded,
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::IdReused,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::UnknownDestination,
    ];

    /// Returns the stable number.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// Returns the code with this number, if there is one.
    pub fn from_number(number: u16) -> Option<Self> {
        ErrorCode::ALL.into_iter().find(|code| code.number() == number)
    }

    /// Returns the code's name as documented in docs/protocol.md.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::IdReused => "id_reused",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::UnknownDestination => "unknown_destination",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_numbered_in_order_from_one() {
        for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code.number() as usize, index + 1, "{code}");
            assert_eq!(ErrorCode::from_number(code.number()), Some(code));
        }
        assert_eq!(ErrorCode::from_number(0), None);
        assert_eq!(ErrorCode::from_number(14), None);
    }
}
