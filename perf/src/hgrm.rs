//! HdrHistogram's classic "percentile distribution" text output (.hgrm), as
//! written by Java's `Histogram.outputPercentileDistribution`, so the files
//! load in the usual HdrHistogram plotters and tools.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Reporting steps per halving of the distance to 100%, as in HdrHistogram's
/// own tools.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// (quantile, value) pairs on the log-percentile ladder, ending at the max.
pub fn quantile_points(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .collect()
}

/// Renders the distribution with values divided by `unit_ratio` (e.g. 1000
/// for nanosecond recordings reported in microseconds).
pub fn percentile_distribution(h: &Histogram<u64>, unit_ratio: f64) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / unit_ratio;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean() / unit_ratio, h.stdev() / unit_ratio)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        h.max() as f64 / unit_ratio,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

/// HdrHistogram's sub-bucket count: the power of two covering
/// 2 * 10^sigfig, so each bucket resolves `sigfig` decimal digits.
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        h
    }

    #[test]
    fn matches_the_classic_layout() {
        let text = percentile_distribution(&sample(), 1000.0);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines.next().unwrap(), "");
        assert_eq!(
            lines.next().unwrap(),
            "       1.000 0.000000000000          1           1.00"
        );
        let body: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .skip(1)
            .collect();
        let last = body.last().unwrap();
        assert_eq!(*last, "    1000.447 1.000000000000       1000");
        assert!(
            text.contains("#[Mean    =      500.505, StdDeviation   =      288.676]"),
            "{text}"
        );
        assert!(
            text.contains("#[Max     =     1000.447, Total count    =         1000]"),
            "{text}"
        );
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn cumulative_counts_and_quantiles_increase() {
        let pts = quantile_points(&sample());
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(pts.last().unwrap().0, 1.0);
        let text = percentile_distribution(&sample(), 1.0);
        let totals: Vec<u64> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(totals.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*totals.last().unwrap(), 1000);
    }

    #[test]
    fn empty_histogram_has_only_header_and_footer() {
        let h = Histogram::<u64>::new(3).unwrap();
        let text = percentile_distribution(&h, 1.0);
        assert_eq!(text.lines().count(), 5);
        assert!(quantile_points(&h).is_empty());
    }

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(1), 32);
    }
}
