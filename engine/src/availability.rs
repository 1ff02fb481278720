//! Availability reads: ATP of one position, of a SKU across locations, and of many
//! SKUs in one call.
//!
//! Reads take no locks. A read whose position may count a hold past its deadline
//! first has the engine sweep due holds, so it returns the same ATP a reserve at the
//! same time would check.

use crate::Engine;
use crate::error::AvailabilityError;
use crate::limits::{LOCATIONS_PER_QUERY_MAX, SKUS_PER_QUERY_MAX};
use crate::position::Counters;

/// The counters and ATP of one position for one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PositionAvailability {
    /// Units physically there.
    pub on_hand: u32,
    /// Units held by open reservations (expired holds excluded).
    pub reserved: u32,
    /// Units of confirmed reservations not yet shipped.
    pub allocated: u32,
    /// Units kept back from online sale.
    pub safety_stock: u32,
    /// Available to promise for the channel; negative in shortage or when safety
    /// stock exceeds the free units.
    pub atp: i64,
    /// Whether reserved + allocated exceeds on hand.
    pub in_shortage: bool,
}

impl PositionAvailability {
    fn from_counters(counters: &Counters, may_sell_safety_stock: bool) -> Self {
        PositionAvailability {
            on_hand: counters.on_hand,
            reserved: counters.reserved,
            allocated: counters.allocated,
            safety_stock: counters.safety_stock,
            atp: counters.atp(may_sell_safety_stock),
            in_shortage: counters.in_shortage(),
        }
    }
}

/// The locations a SKU availability read covers.
#[derive(Clone, Copy, Debug, Default)]
pub enum LocationFilter<'a> {
    /// Every location where the SKU has a position.
    #[default]
    All,
    /// These location codes, in this order (a location without a position reads as 0).
    Only(&'a [&'a str]),
}

/// The availability of a SKU at one location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocationAvailability<'e> {
    /// Location code.
    pub location: &'e str,
    /// Whether the location takes new reservations.
    pub active: bool,
    /// Counters and ATP.
    pub availability: PositionAvailability,
}

/// The availability of a SKU across locations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkuAvailability<'e> {
    /// Sum of the positive ATP of active locations: units that can be promised
    /// somewhere. A location in shortage does not lower other locations' ATP.
    pub total_atp: i64,
    /// Per location, when requested.
    pub locations: Vec<LocationAvailability<'e>>,
}

impl Engine {
    /// Reads counters of one moment, sweeping due holds first when the position may
    /// count one.
    #[inline]
    pub(crate) fn read_position(&self, index: u32, now_ms: u64) -> Counters {
        let position = self.catalog.position(index);
        loop {
            let swept_until_ms = self.swept_until_ms();
            let counters = position.read();
            if !counters.may_hold_expired(now_ms) || now_ms <= swept_until_ms {
                return counters;
            }
            self.expire_due(now_ms);
        }
    }

    /// ATP of one position for a channel (`None` is `default`). A known SKU and
    /// location without a position reads as all zeros.
    pub fn availability(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        now_ms: u64,
    ) -> Result<PositionAvailability, AvailabilityError> {
        let now_ms = self.clock.observe(now_ms);
        let (_, may_sell_safety_stock) = self.channel_for_read(channel)?;
        let sku_id =
            self.catalog.skus.get(sku).ok_or_else(|| AvailabilityError::UnknownSku { code: sku.to_owned() })?;
        let location_id = self
            .catalog
            .locations
            .get(location)
            .ok_or_else(|| AvailabilityError::UnknownLocation { code: location.to_owned() })?;
        let Some(index) = self.catalog.find_position(sku_id, location_id) else {
            return Ok(PositionAvailability::default());
        };
        Ok(PositionAvailability::from_counters(&self.read_position(index, now_ms), may_sell_safety_stock))
    }

    /// ATP of a SKU across locations: the total over active locations and, if
    /// `per_location`, each location's counters.
    pub fn sku_availability(
        &self,
        sku: &str,
        filter: LocationFilter<'_>,
        channel: Option<&str>,
        per_location: bool,
        now_ms: u64,
    ) -> Result<SkuAvailability<'_>, AvailabilityError> {
        let now_ms = self.clock.observe(now_ms);
        let (_, may_sell_safety_stock) = self.channel_for_read(channel)?;
        let locations = self.resolve_filter(filter)?;
        self.sku_availability_resolved(sku, locations.as_deref(), may_sell_safety_stock, per_location, now_ms)
    }

    /// ATP of many SKUs with one channel and location filter, resolved once. Returns
    /// one result per SKU, in order; an unknown SKU is an error in its own slot.
    pub fn availability_batch(
        &self,
        skus: &[&str],
        filter: LocationFilter<'_>,
        channel: Option<&str>,
        per_location: bool,
        now_ms: u64,
    ) -> Result<Vec<Result<SkuAvailability<'_>, AvailabilityError>>, AvailabilityError> {
        if skus.len() > SKUS_PER_QUERY_MAX {
            return Err(AvailabilityError::TooManySkus { count: skus.len() });
        }
        let now_ms = self.clock.observe(now_ms);
        let (_, may_sell_safety_stock) = self.channel_for_read(channel)?;
        let locations = self.resolve_filter(filter)?;
        Ok(skus
            .iter()
            .map(|sku| {
                self.sku_availability_resolved(sku, locations.as_deref(), may_sell_safety_stock, per_location, now_ms)
            })
            .collect())
    }

    fn sku_availability_resolved(
        &self,
        sku: &str,
        locations: Option<&[u32]>,
        may_sell_safety_stock: bool,
        per_location: bool,
        now_ms: u64,
    ) -> Result<SkuAvailability<'_>, AvailabilityError> {
        let sku_id =
            self.catalog.skus.get(sku).ok_or_else(|| AvailabilityError::UnknownSku { code: sku.to_owned() })?;
        let mut result = SkuAvailability::default();
        let mut add = |location_id: u32, availability: PositionAvailability| {
            let location = self.catalog.location(location_id);
            let active = location.is_some_and(|location| location.active.load(std::sync::atomic::Ordering::Acquire));
            if active {
                result.total_atp += availability.atp.max(0);
            }
            if per_location {
                let code = self.catalog.locations.code(location_id).unwrap_or_default();
                result.locations.push(LocationAvailability { location: code, active, availability });
            }
        };
        match locations {
            None => self.catalog.for_each_position(sku_id, |index, position| {
                if position.location() & crate::supply::INBOUND_LOCATION_BIT != 0 {
                    return;
                }
                let counters = self.read_position(index, now_ms);
                add(position.location(), PositionAvailability::from_counters(&counters, may_sell_safety_stock));
            }),
            Some(locations) => {
                for &location_id in locations {
                    let availability = match self.catalog.find_position(sku_id, location_id) {
                        Some(index) => PositionAvailability::from_counters(
                            &self.read_position(index, now_ms),
                            may_sell_safety_stock,
                        ),
                        None => PositionAvailability::default(),
                    };
                    add(location_id, availability);
                }
            }
        }
        Ok(result)
    }

    fn channel_for_read(&self, channel: Option<&str>) -> Result<(u32, bool), AvailabilityError> {
        self.resolve_channel(channel).ok_or_else(|| AvailabilityError::UnknownChannel {
            code: channel.unwrap_or(crate::DEFAULT_CHANNEL).to_owned(),
        })
    }

    fn resolve_filter(&self, filter: LocationFilter<'_>) -> Result<Option<Vec<u32>>, AvailabilityError> {
        let LocationFilter::Only(codes) = filter else { return Ok(None) };
        if codes.len() > LOCATIONS_PER_QUERY_MAX {
            return Err(AvailabilityError::TooManyLocations { count: codes.len() });
        }
        codes
            .iter()
            .map(|code| {
                self.catalog
                    .locations
                    .get(code)
                    .ok_or_else(|| AvailabilityError::UnknownLocation { code: (*code).to_owned() })
            })
            .collect::<Result<Vec<u32>, _>>()
            .map(Some)
    }
}
