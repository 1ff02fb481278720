//! Great-circle distances from unit vectors: each point is converted to a vector on
//! the unit sphere once, so a distance is a dot product and one arc cosine.

/// Mean radius of the Earth, in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6_371.0;

/// A point on the unit sphere.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct UnitVector([f64; 3]);

impl UnitVector {
    pub(crate) fn from_degrees(lat: f64, lon: f64) -> Self {
        let (lat, lon) = (lat.to_radians(), lon.to_radians());
        UnitVector([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()])
    }

    /// Great-circle distance in kilometres.
    #[inline]
    pub(crate) fn distance_km(&self, other: &UnitVector) -> f64 {
        let [ax, ay, az] = self.0;
        let [bx, by, bz] = other.0;
        // The chord length gives the angle without the loss of precision that an arc
        // cosine of a dot product near 1 has for nearby points.
        let chord = ((ax - bx).powi(2) + (ay - by).powi(2) + (az - bz).powi(2)).sqrt();
        2.0 * asin(chord / 2.0) * EARTH_RADIUS_KM
    }
}

/// Arc sine of `x` in 0..=1. Below 0.1 (points within about 1,270 km) a Taylor series
/// to the ninth power, whose error is below 1e-12 of the result, replaces the library
/// call, which costs several times more.
#[inline]
fn asin(x: f64) -> f64 {
    if x < 0.1 {
        let x2 = x * x;
        x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (5.0 / 112.0 + x2 * (35.0 / 1152.0)))))
    } else {
        x.min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
        let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
        let dp = p2 - p1;
        let dl = (lon2 - lon1).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * a.sqrt().asin() * EARTH_RADIUS_KM
    }

    #[test]
    fn distances_match_the_haversine_formula() {
        // Mexico City to Guadalajara, Monterrey, São Paulo; a point to itself; antipodes.
        let cases = [
            (19.4326, -99.1332, 20.6597, -103.3496),
            (19.4326, -99.1332, 25.6866, -100.3161),
            (19.4326, -99.1332, -23.5505, -46.6333),
            (19.4326, -99.1332, 19.4326, -99.1332),
            (0.0, 0.0, 0.0, 180.0),
            (19.4326, -99.1332, 19.4327, -99.1333),
            // Either side of the series' limit of 0.1, about 1,274 km.
            (0.0, 0.0, 0.0, 11.45),
            (0.0, 0.0, 0.0, 11.5),
        ];
        for (lat1, lon1, lat2, lon2) in cases {
            let expected = haversine_km(lat1, lon1, lat2, lon2);
            let actual = UnitVector::from_degrees(lat1, lon1).distance_km(&UnitVector::from_degrees(lat2, lon2));
            assert!((actual - expected).abs() < 1e-9 * expected.max(1.0), "{actual} vs {expected}");
        }
        let cdmx_gdl =
            UnitVector::from_degrees(19.4326, -99.1332).distance_km(&UnitVector::from_degrees(20.6597, -103.3496));
        assert!((460.0..470.0).contains(&cdmx_gdl), "{cdmx_gdl}");
    }
}
