//! Summary statistics over rounds and number formatting for the report.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// Median, min and max of the finite values; `None` if there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// `a / b`, or `None` when the quotient is not a meaningful number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    let r = a / b;
    (b != 0.0 && r.is_finite()).then_some(r)
}

/// Three significant digits with a k/M/G suffix: 4523118 -> "4.52M",
/// 45.31 -> "45.3", 0.01234 -> "0.0123".
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let (scaled, suffix) = match v.abs() {
        a if a >= 999.5e6 => (v / 1e9, "G"),
        a if a >= 999.5e3 => (v / 1e6, "M"),
        a if a >= 999.5 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let a = scaled.abs();
    let decimals = if a == 0.0 || a >= 99.95 {
        0
    } else if a >= 9.995 {
        1
    } else if a >= 0.9995 {
        2
    } else {
        // Three significant digits below one: 0.0123 needs four decimals.
        (2 - a.log10().floor() as i32).clamp(2, 9) as usize
    };
    format!("{scaled:.decimals$}{suffix}")
}

/// "4.52M (4.40M–4.61M)", or just the median for a single round.
pub fn fmt_summary(s: &Summary) -> String {
    if s.n == 1 {
        fmt_num(s.median)
    } else {
        format!(
            "{} ({}–{})",
            fmt_num(s.median),
            fmt_num(s.min),
            fmt_num(s.max)
        )
    }
}

pub fn fmt_ratio(r: f64) -> String {
    format!("{r:.2}×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        let s = summarize(&[5.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (5.0, 5.0, 5.0, 1));
    }

    #[test]
    fn summary_ignores_non_finite_values() {
        let s = summarize(&[f64::NAN, 2.0, f64::INFINITY, 4.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 2.0, 4.0, 2));
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
    }

    #[test]
    fn ratio_guards_division() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(0.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn formats_three_significant_digits() {
        assert_eq!(fmt_num(4_523_118.0), "4.52M");
        assert_eq!(fmt_num(999_999.0), "1.00M");
        assert_eq!(fmt_num(45_310.0), "45.3k");
        assert_eq!(fmt_num(1234.0), "1.23k");
        assert_eq!(fmt_num(812.4), "812");
        assert_eq!(fmt_num(45.31), "45.3");
        assert_eq!(fmt_num(4.531), "4.53");
        assert_eq!(fmt_num(0.01234), "0.0123");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(2.5e9), "2.50G");
    }

    #[test]
    fn formats_summaries_and_ratios() {
        let s = summarize(&[4.4e6, 4.52e6, 4.61e6]).unwrap();
        assert_eq!(fmt_summary(&s), "4.52M (4.40M–4.61M)");
        assert_eq!(fmt_summary(&summarize(&[12.0]).unwrap()), "12.0");
        assert_eq!(fmt_ratio(1.0 / 3.0), "0.33×");
    }
}
