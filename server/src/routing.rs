//! Routing requests: wire types to the engine's routing types and back, and error
//! codes from routing and postal-code errors.

use promesa_engine::error::{PostalError, RouteError};
use promesa_engine::routing::{
    self as engine_routing, Destination, DestinationSource, PostalCodeRow, QuoteRequest, RouteLine, RouteMethod,
    RoutedReserveOutcome, RoutedReserveRequest,
};
use promesa_engine::{FulfilmentMethods, LocationKind, LocationSpec};
use promesa_protocol::{
    ArchivedDestination, ArchivedLocationRouting, ArchivedLocationRow, ArchivedPostalCodeRow, ArchivedRouteMethod,
    ArchivedRouteOrder, ErrorCode, Response,
};

use crate::execute::{error, reserve_error};

/// Builds the engine's location from a wire row and its routing parameters, or the
/// error response for a kind or methods value that is not known.
pub(crate) fn location_spec(
    index: usize,
    row: &ArchivedLocationRow,
    routing: engine_routing::LocationRouting,
) -> Result<LocationSpec, Response> {
    let Some(kind) = LocationKind::from_code(row.kind) else {
        return Err(error(
            ErrorCode::InvalidArgument,
            format!("locations[{index}]: kind {} is not known; expected 0 to 3", row.kind),
        ));
    };
    let Some(methods) = FulfilmentMethods::from_bits(row.methods) else {
        return Err(error(
            ErrorCode::InvalidArgument,
            format!("locations[{index}]: methods {:#x} has unknown bits; expected at most 0x1f", row.methods),
        ));
    };
    Ok(LocationSpec {
        code: row.code.to_string(),
        kind,
        lat: row.lat.to_native(),
        lon: row.lon.to_native(),
        methods,
        daily_capacity: row.daily_capacity.to_native(),
        active: row.active,
        routing,
    })
}

/// Converts wire routing parameters to the engine's; the engine checks the ranges.
pub(crate) fn location_routing(routing: &ArchivedLocationRouting) -> engine_routing::LocationRouting {
    engine_routing::LocationRouting {
        utc_offset_minutes: routing.utc_offset_minutes.to_native(),
        pickup_only: routing.pickup_only,
        terms: std::array::from_fn(|method| engine_routing::MethodTerms {
            handling_minutes: routing.terms[method].handling_minutes.to_native(),
            cutoff_minute: routing.terms[method].cutoff_minute.to_native(),
        }),
        shipment_cost_cents: routing.shipment_cost_cents.to_native(),
        km_cost_cents: routing.km_cost_cents.to_native(),
        speed_km_per_day: routing.speed_km_per_day.to_native(),
        transit_bands: routing
            .transit_bands
            .iter()
            .map(|band| engine_routing::TransitBand {
                distance_km_max: band.distance_km_max.to_native(),
                days: band.days.to_native(),
            })
            .collect(),
    }
}

pub(crate) fn postal_rows(rows: &[ArchivedPostalCodeRow]) -> Vec<PostalCodeRow> {
    rows.iter()
        .map(|row| PostalCodeRow {
            country: row.country.to_string(),
            postal_code: row.postal_code.to_string(),
            lat: row.lat.to_native(),
            lon: row.lon.to_native(),
        })
        .collect()
}

/// Converts a wire order to the engine's quote request, or returns the error response
/// for an order without lines.
pub(crate) fn quote_request(order: &ArchivedRouteOrder) -> Result<QuoteRequest, Response> {
    if order.lines.is_empty() {
        return Err(error(
            ErrorCode::InvalidArgument,
            format!("lines is empty; an order has 1 to {} lines", promesa_protocol::limits::ROUTE_LINES_MAX),
        ));
    }
    let destination = match &order.destination {
        ArchivedDestination::Point { lat, lon } => Destination::Point { lat: lat.to_native(), lon: lon.to_native() },
        ArchivedDestination::Postal { country, postal_code } => {
            Destination::Postal { country: country.to_string(), postal_code: postal_code.to_string() }
        }
    };
    let method = match &order.method {
        ArchivedRouteMethod::ShipCheapest => RouteMethod::ShipCheapest,
        ArchivedRouteMethod::ShipFastest => RouteMethod::ShipFastest,
        ArchivedRouteMethod::SameDay => RouteMethod::SameDay,
        ArchivedRouteMethod::PickupAt { store, curbside } => {
            RouteMethod::PickupAt { store: store.to_string(), curbside: *curbside }
        }
        ArchivedRouteMethod::PickupNearest { curbside } => RouteMethod::PickupNearest { curbside: *curbside },
    };
    Ok(QuoteRequest {
        channel: order.channel.as_ref().map(|name| name.to_string()),
        destination,
        lines: order
            .lines
            .iter()
            .map(|line| RouteLine { sku: line.sku.to_string(), quantity: line.quantity.to_native() })
            .collect(),
        method,
        max_shipments: order.max_shipments.to_native(),
        allow_partial: order.allow_partial,
        allow_backorder: order.allow_backorder,
    })
}

pub(crate) fn routed_reserve_request(
    reservation_id: &str,
    ttl_ms: u64,
    order: &ArchivedRouteOrder,
) -> Result<RoutedReserveRequest, Response> {
    Ok(RoutedReserveRequest { reservation_id: reservation_id.to_owned(), ttl_ms, order: quote_request(order)? })
}

/// Converts the engine's plan to the wire plan.
pub(crate) fn wire_plan(plan: engine_routing::Plan) -> promesa_protocol::Plan {
    let source = match plan.destination.source {
        DestinationSource::Point => promesa_protocol::DestinationSource::Point,
        DestinationSource::PostalCode => promesa_protocol::DestinationSource::PostalCode,
        DestinationSource::PostalRegion { prefix } => promesa_protocol::DestinationSource::PostalRegion { prefix },
    };
    promesa_protocol::Plan {
        destination: promesa_protocol::ResolvedDestination {
            lat: plan.destination.lat,
            lon: plan.destination.lon,
            source,
        },
        shipments: plan
            .shipments
            .into_iter()
            .map(|shipment| promesa_protocol::Shipment {
                location: shipment.location,
                method: shipment.method as u8,
                lines: shipment
                    .lines
                    .into_iter()
                    .map(|line| promesa_protocol::ShipmentLine {
                        line: line.line,
                        sku: line.sku,
                        quantity: u64::from(line.quantity),
                        reservation_line: line.reservation_line,
                    })
                    .collect(),
                distance_km: shipment.distance_km,
                cost_cents: shipment.cost_cents,
                promise_ms: shipment.promise_ms,
                backorder: shipment.backorder,
            })
            .collect(),
        unfilled: plan
            .unfilled
            .into_iter()
            .map(|line| promesa_protocol::UnfilledLine {
                line: line.line,
                sku: line.sku,
                requested: u64::from(line.requested),
                unfilled: u64::from(line.unfilled),
                reason: line.reason as u8,
            })
            .collect(),
        explanations: plan.explanations,
        cost_cents: plan.cost_cents,
    }
}

pub(crate) fn wire_outcome(outcome: RoutedReserveOutcome) -> promesa_protocol::RoutedReserveOutcome {
    promesa_protocol::RoutedReserveOutcome {
        replayed: outcome.replayed,
        held: outcome.held,
        deadline_ms: outcome.deadline_ms,
        plan: wire_plan(outcome.plan),
        attempts: outcome.attempts,
    }
}

pub(crate) fn route_error(failure: &RouteError) -> Response {
    let code = match failure {
        RouteError::Reserve(failure) => return reserve_error(failure),
        RouteError::UnknownPostalCode { .. } => ErrorCode::UnknownDestination,
        RouteError::UnknownPickupStore { .. } => ErrorCode::NotFound,
        RouteError::TooManyLines { .. } => ErrorCode::LimitExceeded,
        RouteError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::InvalidArgument,
    };
    error(code, failure.to_string())
}

/// Returns the response for a postal-code upsert error, naming a bad row as
/// `rows[INDEX]` like the other upserts name theirs.
pub(crate) fn postal_error(failure: &PostalError) -> Response {
    let row = match failure {
        PostalError::Country { row, .. }
        | PostalError::PostalCode { row, .. }
        | PostalError::Coordinates { row, .. } => Some(*row),
        _ => None,
    };
    let code = match failure {
        PostalError::TooManyRows { .. } => ErrorCode::LimitExceeded,
        PostalError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::InvalidArgument,
    };
    let message = failure.to_string();
    let message = match row {
        Some(row) => {
            let reason = message.strip_prefix(&format!("row {row}: ")).unwrap_or(&message);
            format!("rows[{row}]: {reason}")
        }
        None => message,
    };
    error(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routing_matches_the_engine() {
        let wire = promesa_protocol::LocationRouting::default();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&wire).unwrap();
        let archived = rkyv::access::<ArchivedLocationRouting, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(location_routing(archived), engine_routing::LocationRouting::default());
        assert_eq!(promesa_protocol::METHOD_COUNT, engine_routing::METHOD_COUNT);
        assert_eq!(promesa_protocol::NO_CUTOFF_MINUTE, engine_routing::NO_CUTOFF_MINUTE);
        for method in engine_routing::Method::ALL {
            assert_eq!(promesa_protocol::METHOD_NAMES[method as usize], method.name());
        }
    }

    #[test]
    fn protocol_limits_match_the_engine() {
        use promesa_engine::limits;
        use promesa_protocol::limits as wire;
        assert_eq!(wire::ROUTE_LINES_MAX, limits::ROUTE_LINES_MAX);
        assert_eq!(wire::POSTAL_ROWS_PER_REQUEST_MAX, limits::POSTAL_ROWS_PER_UPSERT_MAX);
        assert_eq!(wire::POSTAL_CODE_LEN_MAX, limits::POSTAL_CODE_LEN_MAX);
        assert_eq!(wire::TRANSIT_BANDS_MAX, limits::TRANSIT_BANDS_MAX);
    }

    #[test]
    fn postal_errors_name_the_row() {
        let failure = PostalError::Country { row: 3, country: "M1".into() };
        let Response::Error { code, message } = postal_error(&failure) else { panic!("not an error") };
        assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::InvalidArgument));
        assert_eq!(message, "rows[3]: country \"M1\" is not a two-letter country code");
    }
}
