//! Frames round-trip, and malformed bytes are refused without a panic.

use promesa_protocol::frame::{
    LENGTH_PREFIX_BYTES, access_client_frame, access_server_frame, check_limits, encode_client_frame,
    encode_server_frame, payload_from,
};
use promesa_protocol::limits::{
    FRAME_BYTES_MAX, LINES_PER_RESERVATION_MAX, LOCATIONS_PER_CHANNEL_MAX, POSTAL_CODE_LEN_MAX,
    POSTAL_ROWS_PER_REQUEST_MAX, REQUESTS_PER_FRAME_MAX, ROUTE_LINES_MAX, TRANSIT_BANDS_MAX,
};
use promesa_protocol::{
    ArchivedRequest, ArchivedResponse, ClientFrame, Destination, DestinationSource, FrameError, FrameReader,
    LineOutcome, LocationRouting, LocationRow, LocationWithRouting, POLICY_BACKORDER, Plan, PostalCodeRow, Request,
    RequestEnvelope, ReserveLine, ResolvedDestination, Response, ResponseEnvelope, RouteLine, RouteMethod, RouteOrder,
    RoutedReserveOutcome, ServerFrame, Shipment, ShipmentLine, SupplyOutcome, TimedAvailability, TransitBand,
    UnfilledLine, Units,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn reserve(id: &str, lines: usize) -> Request {
    Request::Reserve {
        reservation_id: id.to_owned(),
        channel: Some("web".to_owned()),
        lines: (0..lines)
            .map(|index| ReserveLine { sku: format!("SKU-{index}"), location: "MX-CDMX-01".to_owned(), quantity: 2 })
            .collect(),
        partial: false,
        ttl_ms: 900_000,
    }
}

fn sample_frame() -> ClientFrame {
    ClientFrame {
        requests: vec![
            RequestEnvelope { id: 1, request: Request::Hello { major: 1, minor: 0, token: "secret".into() } },
            RequestEnvelope { id: 2, request: reserve("order-1", 2) },
            RequestEnvelope {
                id: 3,
                request: Request::Confirm { reservation_id: "order-1".into(), op_id: "c1".into(), units: Units::All },
            },
            RequestEnvelope { id: 4, request: Request::Stats },
        ],
    }
}

/// Splits an encoded frame into its payload.
fn payload_of(bytes: &[u8]) -> promesa_protocol::Payload {
    payload_from(&bytes[LENGTH_PREFIX_BYTES..])
}

#[test]
fn client_frame_round_trips() {
    let bytes = encode_client_frame(&sample_frame());
    let payload = payload_of(&bytes);
    let frame = access_client_frame(&payload).unwrap();
    assert_eq!(frame.requests.len(), 4);
    assert_eq!(frame.requests[1].id.to_native(), 2);
    let ArchivedRequest::Reserve { reservation_id, lines, ttl_ms, .. } = &frame.requests[1].request else {
        panic!("request 2 is not a reserve");
    };
    assert_eq!(reservation_id.as_str(), "order-1");
    assert_eq!(lines.len(), 2);
    assert_eq!(ttl_ms.to_native(), 900_000);
    for envelope in frame.requests.iter() {
        check_limits(&envelope.request).unwrap();
    }
}

#[test]
fn server_frame_round_trips() {
    let frame = ServerFrame {
        responses: vec![
            ResponseEnvelope {
                id: 2,
                response: Response::Reserved {
                    replayed: false,
                    deadline_ms: 5,
                    lines: vec![LineOutcome { status: 0, requested: 2, held: 2 }],
                },
            },
            ResponseEnvelope { id: 9, response: Response::Error { code: 5, message: "limit".into() } },
        ],
    };
    let bytes = encode_server_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_server_frame(&payload).unwrap();
    assert!(matches!(archived.responses[0].response, ArchivedResponse::Reserved { .. }));
    let ArchivedResponse::Error { code, message } = &archived.responses[1].response else {
        panic!("response 9 is not an error");
    };
    assert_eq!(code.to_native(), 5);
    assert_eq!(message.as_str(), "limit");
}

#[test]
fn reader_splits_frames_at_any_boundary() {
    let mut stream = Vec::new();
    for _ in 0..3 {
        stream.extend(encode_client_frame(&sample_frame()));
    }
    for chunk_len in [1, 3, 7, 64, stream.len()] {
        let mut reader = FrameReader::default();
        let mut frames = 0;
        for chunk in stream.chunks(chunk_len) {
            reader.push(chunk);
            while let Some(payload) = reader.next_payload().unwrap() {
                assert_eq!(access_client_frame(&payload).unwrap().requests.len(), 4);
                frames += 1;
            }
        }
        assert_eq!(frames, 3, "chunks of {chunk_len} bytes");
        assert_eq!(reader.buffered_bytes(), 0);
    }
}

#[test]
fn oversized_prefix_rejected_unbuffered() {
    let mut reader = FrameReader::default();
    reader.push(&u32::MAX.to_le_bytes());
    let error = reader.next_payload().unwrap_err();
    assert_eq!(error, FrameError::TooLarge { len: u64::from(u32::MAX) });
    assert!(error.to_string().contains("frame_bytes_max"), "{error}");

    let mut reader = FrameReader::default();
    reader.push(&(FRAME_BYTES_MAX + 1).to_le_bytes());
    assert!(matches!(reader.next_payload(), Err(FrameError::TooLarge { .. })));
}

#[test]
fn too_many_requests_in_a_frame_are_refused() {
    let requests = (0..=REQUESTS_PER_FRAME_MAX as u64).map(|id| RequestEnvelope { id, request: Request::Ping });
    let bytes = encode_client_frame(&ClientFrame { requests: requests.collect() });
    let payload = payload_of(&bytes);
    let error = access_client_frame(&payload).err().expect("too many requests are refused");
    assert_eq!(error, FrameError::TooManyRequests { count: REQUESTS_PER_FRAME_MAX + 1 });
    assert!(error.to_string().contains("requests_per_frame_max = 4096"), "{error}");
}

#[test]
fn limit_errors_name_field_and_limit() {
    let frame = ClientFrame {
        requests: vec![
            RequestEnvelope { id: 1, request: reserve("order-1", LINES_PER_RESERVATION_MAX + 1) },
            RequestEnvelope { id: 2, request: reserve(&"x".repeat(129), 1) },
            RequestEnvelope {
                id: 3,
                request: Request::SetOnHand { sku: "S".repeat(65), location: "L0".into(), on_hand: 1 },
            },
        ],
    };
    let bytes = encode_client_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_client_frame(&payload).unwrap();
    let messages: Vec<String> =
        archived.requests.iter().map(|envelope| check_limits(&envelope.request).unwrap_err().to_string()).collect();
    assert_eq!(messages[0], "lines is 1001, over the limit lines_per_reservation_max = 1000");
    assert_eq!(messages[1], "reservation_id is 129, over the limit id_len_max = 128");
    assert_eq!(messages[2], "sku is 65, over the limit code_len_max = 64");
}

#[test]
fn malformed_payloads_are_refused_without_panicking() {
    let seed: u64 = match std::env::var("PROMESA_TEST_SEED") {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("PROMESA_TEST_SEED={value:?} is not a decimal number")),
        Err(_) => 0x5EED,
    };
    eprintln!("malformed_payloads_are_refused_without_panicking: seed {seed} (replay with PROMESA_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let valid = encode_client_frame(&sample_frame());
    let valid_payload = &valid[LENGTH_PREFIX_BYTES..];

    let mut refused = 0;
    for round in 0..20_000 {
        let bytes: Vec<u8> = match round % 4 {
            // Random bytes of random length.
            0 => (0..rng.gen_range(0..256)).map(|_| rng.r#gen()).collect(),
            // The valid payload cut short.
            1 => valid_payload[..rng.gen_range(0..valid_payload.len())].to_vec(),
            // The valid payload with a few bytes changed (offsets, lengths, tags).
            _ => {
                let mut bytes = valid_payload.to_vec();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.r#gen();
                }
                bytes
            }
        };
        let payload = payload_from(&bytes);
        match access_client_frame(&payload) {
            Ok(frame) => {
                // A change that kept the archive valid: every request is still readable.
                for envelope in frame.requests.iter() {
                    let _ = check_limits(&envelope.request);
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 10_000, "only {refused} of 20000 damaged payloads were refused");
}

fn route_order(destination: Destination, lines: usize) -> RouteOrder {
    RouteOrder {
        channel: Some("web".into()),
        destination,
        lines: (0..lines).map(|index| RouteLine { sku: format!("SKU-{index}"), quantity: 2 }).collect(),
        method: RouteMethod::PickupAt { store: "MX-CDMX-01".into(), curbside: true },
        max_shipments: 2,
        allow_partial: true,
        allow_backorder: false,
    }
}

#[test]
fn routing_messages_round_trip() {
    let postal = Destination::Postal { country: "MX".into(), postal_code: "06600".into() };
    let frame = ClientFrame {
        requests: vec![
            RequestEnvelope { id: 1, request: Request::Quote { order: route_order(postal.clone(), 2) } },
            RequestEnvelope {
                id: 2,
                request: Request::ReserveRouted {
                    reservation_id: "order-1".into(),
                    ttl_ms: 900_000,
                    order: route_order(Destination::Point { lat: 19.43, lon: -99.13 }, 1),
                },
            },
            RequestEnvelope {
                id: 3,
                request: Request::UpsertPostalCodes {
                    rows: vec![PostalCodeRow {
                        country: "MX".into(),
                        postal_code: "06*".into(),
                        lat: 19.4,
                        lon: -99.1,
                    }],
                },
            },
        ],
    };
    let bytes = encode_client_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_client_frame(&payload).unwrap();
    for envelope in archived.requests.iter() {
        check_limits(&envelope.request).unwrap();
    }
    let decoded = rkyv::deserialize::<ClientFrame, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(decoded, frame);

    let plan = Plan {
        destination: ResolvedDestination {
            lat: 19.43,
            lon: -99.13,
            source: DestinationSource::PostalRegion { prefix: "06".into() },
        },
        shipments: vec![Shipment {
            location: "MX-CDMX-01".into(),
            method: 2,
            lines: vec![ShipmentLine { line: 0, sku: "SKU-0".into(), quantity: 2, reservation_line: Some(0) }],
            distance_km: 1.5,
            cost_cents: 500,
            promise_ms: 1_767_225_600_000,
            backorder: true,
        }],
        unfilled: vec![UnfilledLine { line: 1, sku: "SKU-1".into(), requested: 2, unfilled: 2, reason: 4 }],
        explanations: vec!["MX-CDMX-01: nearest store that fills the order".into()],
        cost_cents: 500,
    };
    let outcome = RoutedReserveOutcome { replayed: false, held: true, deadline_ms: 5, plan: plan.clone(), attempts: 1 };
    let frame = ServerFrame {
        responses: vec![
            ResponseEnvelope { id: 1, response: Response::Quoted(Box::new(plan)) },
            ResponseEnvelope { id: 2, response: Response::ReservedRouted(Box::new(outcome)) },
            ResponseEnvelope { id: 3, response: Response::PostalCodesUpserted { rows_in_table: 1 } },
        ],
    };
    let bytes = encode_server_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_server_frame(&payload).unwrap();
    let decoded = rkyv::deserialize::<ServerFrame, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(decoded, frame);
}

#[test]
fn routing_limit_errors_name_field_and_limit() {
    let long_postal = Destination::Postal { country: "MX".into(), postal_code: "0".repeat(POSTAL_CODE_LEN_MAX + 1) };
    let location = LocationRow {
        code: "MX-01".into(),
        kind: 0,
        lat: 19.43,
        lon: -99.13,
        methods: 1,
        daily_capacity: 0,
        active: true,
    };
    let band = TransitBand { distance_km_max: 100, days: 1 };
    let routing = LocationRouting { transit_bands: vec![band; TRANSIT_BANDS_MAX + 1], ..LocationRouting::default() };
    let row = PostalCodeRow { country: "MX".into(), postal_code: "06700".into(), lat: 19.4, lon: -99.1 };

    let requests = vec![
        Request::Quote { order: route_order(Destination::Point { lat: 0.0, lon: 0.0 }, ROUTE_LINES_MAX + 1) },
        Request::ReserveRouted { reservation_id: "order-1".into(), ttl_ms: 60_000, order: route_order(long_postal, 1) },
        Request::UpsertPostalCodes { rows: vec![row; POSTAL_ROWS_PER_REQUEST_MAX + 1] },
        Request::UpsertChannel {
            code: "web".into(),
            may_sell_safety_stock: false,
            locations: Some(vec!["MX-01".into(); LOCATIONS_PER_CHANNEL_MAX + 1]),
        },
        Request::UpsertLocationsWithRouting { locations: vec![LocationWithRouting { location, routing }] },
    ];
    let frame = ClientFrame {
        requests: requests
            .into_iter()
            .enumerate()
            .map(|(id, request)| RequestEnvelope { id: id as u64, request })
            .collect(),
    };
    let bytes = encode_client_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_client_frame(&payload).unwrap();

    let messages: Vec<String> =
        archived.requests.iter().map(|envelope| check_limits(&envelope.request).unwrap_err().to_string()).collect();
    assert_eq!(messages[0], "lines is 65, over the limit route_lines_max = 64");
    assert_eq!(messages[1], "postal_code is 17, over the limit postal_code_len_max = 16");
    assert_eq!(messages[2], "rows is 20001, over the limit postal_rows_per_request_max = 20000");
    assert_eq!(messages[3], "locations is 10001, over the limit locations_per_channel_max = 10000");
    assert_eq!(messages[4], "transit_bands is 17, over the limit transit_bands_max = 16");
}

#[test]
fn supply_messages_round_trip() {
    let line = ReserveLine { sku: "SKU-1".into(), location: "MX-01".into(), quantity: 20 };
    let requests = vec![
        Request::AddSupply {
            receipt_id: "po-1".into(),
            sku: "SKU-1".into(),
            location: "MX-01".into(),
            quantity: 500,
            arrival_ms: 1_798_761_600_000,
        },
        Request::MoveSupply { receipt_id: "po-1".into(), arrival_ms: 1_799_625_600_000 },
        Request::CancelSupply { receipt_id: "po-1".into() },
        Request::AvailabilityBy {
            sku: "SKU-1".into(),
            location: "MX-01".into(),
            channel: Some("web".into()),
            by_ms: 1_798_761_600_000,
        },
        Request::EarliestAvailable { sku: "SKU-1".into(), location: "MX-01".into(), channel: None, quantity: 20 },
        Request::ReserveWithPolicy {
            reservation_id: "order-1".into(),
            channel: None,
            lines: vec![line],
            policy: POLICY_BACKORDER,
            ttl_ms: 900_000,
        },
    ];
    let frame = ClientFrame {
        requests: requests
            .into_iter()
            .enumerate()
            .map(|(id, request)| RequestEnvelope { id: id as u64, request })
            .collect(),
    };
    let bytes = encode_client_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_client_frame(&payload).unwrap();
    for envelope in archived.requests.iter() {
        check_limits(&envelope.request).unwrap();
    }
    let decoded = rkyv::deserialize::<ClientFrame, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(decoded, frame);

    let timed = TimedAvailability { atp: -2, inbound_by: 500, backordered: 20, available: 480 };
    let frame = ServerFrame {
        responses: vec![
            ResponseEnvelope {
                id: 0,
                response: Response::SupplyChanged(SupplyOutcome { replayed: true, inbound: 500, backordered: 20 }),
            },
            ResponseEnvelope { id: 3, response: Response::AvailabilityBy(timed) },
            ResponseEnvelope { id: 4, response: Response::EarliestAvailable { at_ms: Some(1_798_761_600_000) } },
            ResponseEnvelope { id: 5, response: Response::EarliestAvailable { at_ms: None } },
            ResponseEnvelope {
                id: 6,
                response: Response::Reserved {
                    replayed: false,
                    deadline_ms: 5,
                    lines: vec![LineOutcome { status: 7, requested: 20, held: 20 }],
                },
            },
        ],
    };
    let bytes = encode_server_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_server_frame(&payload).unwrap();
    let decoded = rkyv::deserialize::<ServerFrame, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(decoded, frame);
}

#[test]
fn supply_limit_errors_name_field_and_limit() {
    let requests = vec![
        Request::AddSupply {
            receipt_id: "p".repeat(129),
            sku: "SKU-1".into(),
            location: "MX-01".into(),
            quantity: 1,
            arrival_ms: 0,
        },
        Request::MoveSupply { receipt_id: "p".repeat(129), arrival_ms: 0 },
        Request::CancelSupply { receipt_id: "p".repeat(129) },
        Request::AvailabilityBy { sku: "S".repeat(65), location: "MX-01".into(), channel: None, by_ms: 0 },
        Request::EarliestAvailable {
            sku: "SKU-1".into(),
            location: "MX-01".into(),
            channel: Some("c".repeat(65)),
            quantity: 1,
        },
        Request::ReserveWithPolicy {
            reservation_id: "order-1".into(),
            channel: None,
            lines: vec![
                ReserveLine { sku: "SKU-1".into(), location: "MX-01".into(), quantity: 1 };
                LINES_PER_RESERVATION_MAX + 1
            ],
            policy: POLICY_BACKORDER,
            ttl_ms: 60_000,
        },
    ];
    let frame = ClientFrame {
        requests: requests
            .into_iter()
            .enumerate()
            .map(|(id, request)| RequestEnvelope { id: id as u64, request })
            .collect(),
    };
    let bytes = encode_client_frame(&frame);
    let payload = payload_of(&bytes);
    let archived = access_client_frame(&payload).unwrap();

    let messages: Vec<String> =
        archived.requests.iter().map(|envelope| check_limits(&envelope.request).unwrap_err().to_string()).collect();
    for message in &messages[..3] {
        assert_eq!(message, "receipt_id is 129, over the limit id_len_max = 128");
    }
    assert_eq!(messages[3], "sku is 65, over the limit code_len_max = 64");
    assert_eq!(messages[4], "channel is 65, over the limit code_len_max = 64");
    assert_eq!(messages[5], "lines is 1001, over the limit lines_per_reservation_max = 1000");
}
