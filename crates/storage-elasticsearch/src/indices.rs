//! Index names: Jaeger's time-partitioned indices
//! (`<prefix>jaeger-span-2026-11-24`, hourly `…-2026-11-24-07`) or, in
//! rollover mode, the `-read` / `-write` aliases.
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::mapping::IndexKind;

/// How often a new index is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Frequency {
    Day,
    Hour,
}

impl Frequency {
    fn step(self) -> Duration {
        match self {
            Frequency::Day => Duration::from_secs(86_400),
            Frequency::Hour => Duration::from_secs(3_600),
        }
    }
}

#[derive(Clone, Debug)]
pub struct IndexLayout {
    /// With its trailing `-` when set, empty for none.
    pub prefix: String,
    /// Read and write through `-read` / `-write` aliases (rollover, ILM/ISM).
    pub use_aliases: bool,
    /// Between the date parts: `2026-11-24` with `-`, `2026.11.24` with `.`.
    pub date_separator: String,
    pub span_frequency: Frequency,
    pub service_frequency: Frequency,
    /// The archive's layout: spans in one `<prefix>jaeger-span-archive`
    /// index (or its `-read`/`-write` aliases), no service index, as
    /// Jaeger's archive storage keeps them.
    pub archive: bool,
}

impl Default for IndexLayout {
    fn default() -> Self {
        IndexLayout {
            prefix: String::new(),
            use_aliases: false,
            date_separator: "-".into(),
            span_frequency: Frequency::Day,
            service_frequency: Frequency::Day,
            archive: false,
        }
    }
}

impl IndexLayout {
    /// `prod` becomes `prod-`, as Jaeger joins prefix and name.
    pub fn normalize_prefix(prefix: &str) -> String {
        if prefix.is_empty() || prefix.ends_with('-') {
            prefix.to_string()
        } else {
            format!("{prefix}-")
        }
    }

    fn frequency(&self, kind: IndexKind) -> Frequency {
        match kind {
            IndexKind::Span => self.span_frequency,
            IndexKind::Service => self.service_frequency,
            IndexKind::Dependencies | IndexKind::Sampling => Frequency::Day,
        }
    }

    /// `<prefix>jaeger-span-`, the start of every index of that kind.
    pub fn base(&self, kind: IndexKind) -> String {
        if self.archive && kind == IndexKind::Span {
            return format!("{}-", self.archive_index());
        }
        format!("{}{}-", self.prefix, kind.name())
    }

    /// The index families this layout manages: the archive's spans alone,
    /// or all four.
    pub fn families(&self) -> &'static [IndexKind] {
        if self.archive {
            &[IndexKind::Span]
        } else {
            &IndexKind::ALL
        }
    }

    pub fn read_alias(&self, kind: IndexKind) -> String {
        format!("{}read", self.base(kind))
    }

    pub fn write_alias(&self, kind: IndexKind) -> String {
        format!("{}write", self.base(kind))
    }

    /// The archive's one span index, `<prefix>jaeger-span-archive`.
    pub fn archive_index(&self) -> String {
        format!("{}{}-archive", self.prefix, IndexKind::Span.name())
    }

    /// The index a document written at `at` goes to.
    pub fn write_index(&self, kind: IndexKind, at: SystemTime) -> String {
        if self.archive && kind == IndexKind::Span {
            return if self.use_aliases {
                self.write_alias(kind)
            } else {
                self.archive_index()
            };
        }
        if self.use_aliases {
            self.write_alias(kind)
        } else {
            self.dated(kind, at)
        }
    }

    fn dated(&self, kind: IndexKind, at: SystemTime) -> String {
        let t: DateTime<Utc> = at.into();
        let sep = &self.date_separator;
        let pattern = match self.frequency(kind) {
            Frequency::Day => format!("%Y{sep}%m{sep}%d"),
            Frequency::Hour => format!("%Y{sep}%m{sep}%d{sep}%H"),
        };
        let date = t.format(&pattern);
        format!("{}{date}", self.base(kind))
    }

    /// The indices that can hold documents from `start` to `end`, newest
    /// first; one alias in rollover mode.
    pub fn read_indices(&self, kind: IndexKind, start: SystemTime, end: SystemTime) -> Vec<String> {
        if self.archive && kind == IndexKind::Span {
            return vec![if self.use_aliases {
                self.read_alias(kind)
            } else {
                self.archive_index()
            }];
        }
        if self.use_aliases {
            return vec![self.read_alias(kind)];
        }
        let first = self.dated(kind, start);
        let step = self.frequency(kind).step();
        let mut out = Vec::new();
        let mut t = end;
        while t > start {
            let index = self.dated(kind, t);
            if index == first {
                break;
            }
            if out.last() != Some(&index) {
                out.push(index);
            }
            t = t.checked_sub(step).unwrap_or(start);
        }
        out.push(first);
        out
    }

    /// The date an index name carries, for deleting old ones; None for
    /// names that are not this layout's dated indices of `kind`.
    pub fn index_date(&self, kind: IndexKind, index: &str) -> Option<SystemTime> {
        let rest = index.strip_prefix(&self.base(kind))?;
        let parts: Vec<&str> = rest.split(self.date_separator.as_str()).collect();
        if !(3..=4).contains(&parts.len()) {
            return None;
        }
        let num = |i: usize| parts.get(i)?.parse::<u32>().ok();
        let date = chrono::NaiveDate::from_ymd_opt(num(0)? as i32, num(1)?, num(2)?)?;
        let hour = if parts.len() == 4 { num(3)? } else { 0 };
        Some(date.and_hms_opt(hour, 0, 0)?.and_utc().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .into()
    }

    #[test]
    fn daily_indices_cover_the_range_newest_first() {
        let l = IndexLayout {
            prefix: IndexLayout::normalize_prefix("prod"),
            ..IndexLayout::default()
        };
        let got = l.read_indices(
            IndexKind::Span,
            at("2026-11-22T23:00:00Z"),
            at("2026-11-24T01:00:00Z"),
        );
        assert_eq!(
            got,
            [
                "prod-jaeger-span-2026-11-24",
                "prod-jaeger-span-2026-11-23",
                "prod-jaeger-span-2026-11-22"
            ]
        );
        let same_day = l.read_indices(
            IndexKind::Service,
            at("2026-11-24T00:00:00Z"),
            at("2026-11-24T20:00:00Z"),
        );
        assert_eq!(same_day, ["prod-jaeger-service-2026-11-24"]);
    }

    #[test]
    fn hourly_indices_and_other_separators() {
        let l = IndexLayout {
            span_frequency: Frequency::Hour,
            date_separator: ".".into(),
            ..IndexLayout::default()
        };
        assert_eq!(
            l.write_index(IndexKind::Span, at("2026-11-24T07:59:00Z")),
            "jaeger-span-2026.11.24.07"
        );
        assert_eq!(
            l.read_indices(
                IndexKind::Span,
                at("2026-11-24T06:30:00Z"),
                at("2026-11-24T08:10:00Z")
            ),
            [
                "jaeger-span-2026.11.24.08",
                "jaeger-span-2026.11.24.07",
                "jaeger-span-2026.11.24.06"
            ]
        );
        // services stay daily
        assert_eq!(
            l.write_index(IndexKind::Service, at("2026-11-24T07:59:00Z")),
            "jaeger-service-2026.11.24"
        );
    }

    #[test]
    fn the_archive_is_one_index_or_its_aliases_as_in_jaeger() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let l = IndexLayout {
            prefix: IndexLayout::normalize_prefix("prod"),
            archive: true,
            ..IndexLayout::default()
        };
        assert_eq!(
            l.write_index(IndexKind::Span, now),
            "prod-jaeger-span-archive"
        );
        assert_eq!(
            l.read_indices(IndexKind::Span, now - 30 * day, now),
            ["prod-jaeger-span-archive"]
        );
        let aliased = IndexLayout {
            use_aliases: true,
            ..l
        };
        assert_eq!(
            aliased.write_index(IndexKind::Span, now),
            "prod-jaeger-span-archive-write"
        );
        assert_eq!(
            aliased.read_indices(IndexKind::Span, now - day, now),
            ["prod-jaeger-span-archive-read"]
        );
        // what `spoor-es-index --archive` manages: the first index is
        // Jaeger's `jaeger-span-archive-000001`
        assert_eq!(aliased.base(IndexKind::Span), "prod-jaeger-span-archive-");
        assert_eq!(aliased.families(), [IndexKind::Span]);
    }

    #[test]
    fn rollover_mode_uses_aliases() {
        let l = IndexLayout {
            use_aliases: true,
            ..IndexLayout::default()
        };
        let now = SystemTime::now();
        assert_eq!(l.write_index(IndexKind::Span, now), "jaeger-span-write");
        assert_eq!(
            l.read_indices(
                IndexKind::Dependencies,
                now - Duration::from_secs(999_999),
                now
            ),
            ["jaeger-dependencies-read"]
        );
    }

    #[test]
    fn index_dates_are_read_back() {
        let l = IndexLayout {
            prefix: "p-".into(),
            ..IndexLayout::default()
        };
        assert_eq!(
            l.index_date(IndexKind::Span, "p-jaeger-span-2026-11-24"),
            Some(at("2026-11-24T00:00:00Z"))
        );
        assert_eq!(
            l.index_date(IndexKind::Span, "p-jaeger-span-2026-11-24-05"),
            Some(at("2026-11-24T05:00:00Z"))
        );
        assert_eq!(l.index_date(IndexKind::Span, "p-jaeger-span-read"), None);
        assert_eq!(l.index_date(IndexKind::Span, "p-jaeger-span-000001"), None);
        assert_eq!(
            l.index_date(IndexKind::Span, "jaeger-span-2026-11-24"),
            None
        );
        assert_eq!(
            l.index_date(IndexKind::Service, "p-jaeger-span-2026-11-24"),
            None
        );
    }
}
