//! What routing reads about locations and channels, gathered in one immutable table
//! that is rebuilt after a location or channel changes, so a quote reads plain memory
//! instead of taking a lock per location.

use std::sync::atomic::Ordering;

use crate::catalog::{Catalog, FulfilmentMethods};
use crate::routing::LocationRouting;
use crate::routing::geo::UnitVector;

/// One location as routing sees it.
pub(crate) struct LocationRoute {
    pub code: String,
    pub point: UnitVector,
    pub methods: FulfilmentMethods,
    /// Orders per local day; 0 for no limit.
    pub daily_capacity: u32,
    pub active: bool,
    pub routing: LocationRouting,
}

/// Every location by id, and the locations each channel may use.
#[derive(Default)]
pub(crate) struct RoutingTable {
    pub locations: Vec<Option<LocationRoute>>,
    /// Per channel id, a bit set over location ids; `None` lets the channel use any
    /// location.
    channel_locations: Vec<Option<Box<[u64]>>>,
}

impl RoutingTable {
    /// Builds the table from the catalog. The caller holds the catalog's writer lock.
    pub(crate) fn build(catalog: &Catalog) -> Self {
        let locations = (0..catalog.location_count() as u32)
            .map(|id| {
                let record = catalog.location(id)?;
                let info = record.info.read();
                let info = info.as_ref()?;
                Some(LocationRoute {
                    code: info.code.clone(),
                    point: UnitVector::from_degrees(info.lat, info.lon),
                    methods: info.methods,
                    daily_capacity: info.daily_capacity,
                    active: record.active.load(Ordering::Acquire),
                    routing: info.routing.clone(),
                })
            })
            .collect::<Vec<_>>();
        let channel_locations = (0..catalog.channel_count() as u32)
            .map(|id| {
                let channel = catalog.channel(id)?;
                let allowed = channel.locations.read();
                let allowed = allowed.as_ref()?;
                let mut bits = vec![0u64; locations.len().div_ceil(64)].into_boxed_slice();
                for &location in allowed.iter() {
                    if let Some(word) = bits.get_mut(location as usize / 64) {
                        *word |= 1 << (location % 64);
                    }
                }
                Some(bits)
            })
            .collect();
        RoutingTable { locations, channel_locations }
    }

    /// True if and only if the channel may route orders to the location.
    #[inline]
    pub(crate) fn channel_allows(&self, channel: u32, location: u32) -> bool {
        match self.channel_locations.get(channel as usize) {
            Some(Some(bits)) => bits.get(location as usize / 64).is_some_and(|word| word & (1 << (location % 64)) != 0),
            _ => true,
        }
    }
}
