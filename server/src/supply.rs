//! Inbound supply requests: receipts added, moved and cancelled, availability by a time,
//! earliest availability, and the reserve policy number; error codes from supply errors.

use promesa_engine::Policy;
use promesa_engine::supply::{SupplyError, SupplyOutcome, TimedAvailability};
use promesa_protocol::{ErrorCode, Response};

use crate::execute::{code_error, error};

/// Returns the engine's reserve policy for its wire number, or the error response for
/// a number that is not known.
pub(crate) fn reserve_policy(policy: u8) -> Result<Policy, Response> {
    match policy {
        0 => Ok(Policy::AllOrNothing),
        1 => Ok(Policy::Partial),
        2 => Ok(Policy::Backorder),
        other => Err(error(
            ErrorCode::InvalidArgument,
            format!("policy {other} is not known; expected 0 all or nothing, 1 partial, 2 backorder"),
        )),
    }
}

/// Converts the result of a receipt added, moved or cancelled to its response.
pub(crate) fn supply_changed(result: Result<SupplyOutcome, SupplyError>) -> Response {
    match result {
        Ok(outcome) => Response::SupplyChanged(promesa_protocol::SupplyOutcome {
            replayed: outcome.replayed,
            inbound: u64::from(outcome.inbound),
            backordered: u64::from(outcome.backordered),
        }),
        Err(failure) => supply_error(&failure),
    }
}

/// Converts the result of an availability read by a time to its response.
pub(crate) fn availability_by(result: Result<TimedAvailability, SupplyError>) -> Response {
    match result {
        Ok(read) => Response::AvailabilityBy(promesa_protocol::TimedAvailability {
            atp: read.atp,
            inbound_by: read.inbound_by,
            backordered: read.backordered,
            available: read.available,
        }),
        Err(failure) => supply_error(&failure),
    }
}

/// Converts the result of an earliest-availability read to its response. A time
/// before `now_ms` means the units can be promised now (a receipt is past its expected
/// arrival, or the engine's clock is behind the server's), so it is sent as `now_ms`.
pub(crate) fn earliest_available(result: Result<Option<u64>, SupplyError>, now_ms: u64) -> Response {
    match result {
        Ok(at_ms) => Response::EarliestAvailable { at_ms: at_ms.map(|at_ms| at_ms.max(now_ms)) },
        Err(failure) => supply_error(&failure),
    }
}

pub(crate) fn supply_error(failure: &SupplyError) -> Response {
    let code = match failure {
        SupplyError::Code(failure) => return code_error(failure),
        SupplyError::Stock(failure) => return crate::execute::stock_error(failure),
        SupplyError::UnknownLocation { .. }
        | SupplyError::UnknownSku { .. }
        | SupplyError::UnknownChannel { .. }
        | SupplyError::UnknownReceipt { .. } => ErrorCode::NotFound,
        SupplyError::QuantityOutOfRange { .. } => ErrorCode::InvalidArgument,
        SupplyError::IdReusedWithDifferentContent { .. } => ErrorCode::IdReused,
        SupplyError::Backordered { .. } => ErrorCode::Conflict,
        SupplyError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    error(code, failure.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(response: &Response) -> Option<ErrorCode> {
        match response {
            Response::Error { code, .. } => ErrorCode::from_number(*code),
            _ => None,
        }
    }

    #[test]
    fn supply_errors_map_to_stable_codes() {
        let receipt_id = || "po-1".to_owned();
        let cases = [
            (SupplyError::UnknownReceipt { receipt_id: receipt_id() }, ErrorCode::NotFound),
            (SupplyError::UnknownLocation { code: "MX-99".into() }, ErrorCode::NotFound),
            (SupplyError::UnknownSku { code: "SKU-9".into() }, ErrorCode::NotFound),
            (SupplyError::UnknownChannel { code: "web".into() }, ErrorCode::NotFound),
            (SupplyError::QuantityOutOfRange { receipt_id: receipt_id(), quantity: 0 }, ErrorCode::InvalidArgument),
            (SupplyError::IdReusedWithDifferentContent { receipt_id: receipt_id() }, ErrorCode::IdReused),
            (
                SupplyError::Backordered { receipt_id: receipt_id(), quantity: 5, inbound_left: 0, backordered: 3 },
                ErrorCode::Conflict,
            ),
        ];
        for (failure, expected) in cases {
            let response = supply_error(&failure);
            assert_eq!(code_of(&response), Some(expected), "{failure:?}");
            let Response::Error { message, .. } = response else { unreachable!("checked above") };
            assert_eq!(message, failure.to_string());
        }
    }

    #[test]
    fn policy_numbers_match_the_engine() {
        for (number, name) in promesa_protocol::POLICY_NAMES.iter().enumerate() {
            let policy = reserve_policy(number as u8).unwrap_or_else(|_| panic!("policy {name} is not known"));
            assert_eq!(policy as u8, number as u8, "{name}");
        }
        assert_eq!(reserve_policy(promesa_protocol::POLICY_ALL_OR_NOTHING), Ok(Policy::AllOrNothing));
        assert_eq!(reserve_policy(promesa_protocol::POLICY_PARTIAL), Ok(Policy::Partial));
        assert_eq!(reserve_policy(promesa_protocol::POLICY_BACKORDER), Ok(Policy::Backorder));
        let unknown = reserve_policy(3).expect_err("policy 3 is not known");
        assert_eq!(code_of(&unknown), Some(ErrorCode::InvalidArgument));
    }

    #[test]
    fn receipt_id_limit_matches_the_engine() {
        assert_eq!(promesa_protocol::limits::ID_LEN_MAX, promesa_engine::limits::OPERATION_ID_LEN_MAX);
    }

    #[test]
    fn earliest_time_is_never_before_now() {
        let now_ms = 1_000;
        let at = |result| match earliest_available(Ok(result), now_ms) {
            Response::EarliestAvailable { at_ms } => at_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(Some(400)), Some(1_000));
        assert_eq!(at(Some(5_000)), Some(5_000));
        assert_eq!(at(None), None);
    }
}
