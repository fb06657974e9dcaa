//! The exponentially weighted moving average every baseline uses.

/// EWMA with smoothing factor `alpha`: each update moves the value
/// `alpha` of the way towards the new sample. The first sample is taken
/// as is, so a constant series has exactly that constant as its baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Default for Ewma {
    fn default() -> Self {
        Ewma::new(0.3)
    }
}

impl Ewma {
    pub fn new(alpha: f64) -> Ewma {
        Ewma {
            alpha: alpha.clamp(f64::MIN_POSITIVE, 1.0),
            value: None,
        }
    }

    pub fn with_alpha(mut self, alpha: f64) -> Ewma {
        self.alpha = alpha.clamp(f64::MIN_POSITIVE, 1.0);
        self
    }

    pub fn update(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.value = Some(match self.value {
            None => x,
            Some(v) => v + self.alpha * (x - v),
        });
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_then_smoothing() {
        let mut e = Ewma::new(0.3);
        assert_eq!(e.value(), None);
        e.update(10.0);
        assert_eq!(e.value(), Some(10.0));
        e.update(20.0);
        assert!((e.value().unwrap() - 13.0).abs() < 1e-12);
        e.update(f64::NAN);
        assert!((e.value().unwrap() - 13.0).abs() < 1e-12);
    }

    #[test]
    fn a_constant_series_is_its_own_baseline() {
        let mut e = Ewma::new(0.3);
        for _ in 0..100 {
            e.update(7.1);
        }
        assert_eq!(e.value(), Some(7.1));
    }
}
