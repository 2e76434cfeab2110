//! Conversion between [`PairRecord`]s and Arrow record batches of the pair schema.
//!
//! Encoding builds each column in one pass; header lists are assembled from flat name/value
//! arrays and an offset buffer rather than through nested builders. Decoding expects a batch in
//! the canonical schema (the reader casts compatible foreign types first).

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, UInt16Array, UInt64Array,
    builder::{BinaryBuilder, BooleanBuilder, StringBuilder, UInt16Builder, UInt64Builder},
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::pair::{Header, PairRecord, SideRecord};
use super::schema::{self, SCHEMA, Side, SideColumns};

/// Encode records into one batch of the pair schema.
pub fn records_to_batch(records: &[PairRecord]) -> Result<RecordBatch, ArrowError> {
    let n = records.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(SCHEMA.fields().len());

    columns.push(strings(records.iter().map(|r| Some(r.pair_id.as_str()))));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_iter_values(records.iter().map(|r| r.captured_at.timestamp_micros()))
            .with_timezone(schema::TIMEZONE),
    ));
    columns.push(strings(records.iter().map(|r| Some(r.agent.as_str()))));
    columns.push(strings(records.iter().map(|r| Some(r.method.as_str()))));
    columns.push(strings(records.iter().map(|r| Some(r.path.as_str()))));
    columns.push(strings(records.iter().map(|r| r.query.as_deref())));
    columns.push(headers(records.iter().map(|r| r.request_headers.as_slice()), n)?);
    columns.push(binaries(records.iter().map(|r| r.request_body.as_deref())));
    columns.push(booleans(records.iter().map(|r| r.request_body_truncated)));
    for side in Side::ALL {
        let sides = || records.iter().map(move |r| r.side(side));
        let mut status = UInt16Builder::with_capacity(n);
        sides().for_each(|s| status.append_option(s.status));
        columns.push(Arc::new(status.finish()));
        columns.push(headers(sides().map(|s| s.headers.as_slice()), n)?);
        columns.push(binaries(sides().map(|s| s.body.as_deref())));
        columns.push(booleans(sides().map(|s| s.body_truncated)));
        columns.push(u64s(sides().map(|s| s.latency_us)));
        columns.push(u64s(sides().map(|s| s.ttfb_us)));
        columns.push(strings(sides().map(|s| s.error.as_deref())));
        columns.push(headers(sides().map(|s| s.trailers.as_slice()), n)?);
    }
    RecordBatch::try_new(SCHEMA.clone(), columns)
}

// Every builder is sized before it is filled: a row group of 4,096 pairs with ~1 KB bodies grows
// a body column to megabytes, and growing it by doubling copied it about twice over (perf on
// `bench/replay.sh`: reallocation copies were 6 % of replay's CPU). Counting the lengths first is
// one cheap pass over values already in cache.

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> ArrayRef {
    let bytes = values.clone().map(|v| v.map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(values.size_hint().0, bytes);
    values.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn binaries<'a>(values: impl Iterator<Item = Option<&'a [u8]>> + Clone) -> ArrayRef {
    let bytes = values.clone().map(|v| v.map_or(0, <[u8]>::len)).sum();
    let mut b = BinaryBuilder::with_capacity(values.size_hint().0, bytes);
    values.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn booleans(values: impl Iterator<Item = bool>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(values.size_hint().0);
    values.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

fn u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    let mut b = UInt64Builder::with_capacity(values.size_hint().0);
    values.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn headers<'a>(lists: impl Iterator<Item = &'a [Header]> + Clone, rows: usize) -> Result<ArrayRef, ArrowError> {
    let (mut count, mut name_bytes, mut value_bytes) = (0, 0, 0);
    for h in lists.clone().flatten() {
        count += 1;
        name_bytes += h.name.len();
        value_bytes += h.value.len();
    }
    let mut names = StringBuilder::with_capacity(count, name_bytes);
    let mut values = BinaryBuilder::with_capacity(count, value_bytes);
    let mut lengths = Vec::with_capacity(rows);
    for list in lists {
        lengths.push(list.len());
        for h in list {
            names.append_value(&h.name);
            values.append_value(&h.value);
        }
    }
    let entries = StructArray::try_new(
        schema::header_fields(),
        vec![Arc::new(names.finish()) as ArrayRef, Arc::new(values.finish())],
        None,
    )?;
    let field = match schema::headers_type() {
        DataType::List(f) => f,
        other => unreachable!("headers_type is a list, not {other}"),
    };
    let list = ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), Arc::new(entries), None)?;
    Ok(Arc::new(list))
}

/// A decoding failure: which column and row, and what was wrong. The reader adds the file.
#[derive(Debug)]
pub struct DecodeError {
    pub column: String,
    pub row: usize,
    pub message: String,
}

fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, DecodeError> {
    let col = batch.column_by_name(name).ok_or_else(|| DecodeError {
        column: name.to_owned(),
        row: 0,
        message: "the column is missing".into(),
    })?;
    col.as_any().downcast_ref::<T>().ok_or_else(|| DecodeError {
        column: name.to_owned(),
        row: 0,
        message: format!("unexpected type {}", col.data_type()),
    })
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_owned())
}

fn opt_u64(a: &UInt64Array, i: usize) -> Option<u64> {
    a.is_valid(i).then(|| a.value(i))
}

fn required_str(a: &StringArray, name: &str, i: usize) -> Result<String, DecodeError> {
    opt_str(a, i).ok_or_else(|| DecodeError {
        column: name.into(),
        row: i,
        message: "null in a required column".into(),
    })
}

/// A `list<struct<name, value>>` column with its entries' arrays found once per batch, so that
/// a row's headers are read by offset (`ListArray::value` would slice, and allocate, per row).
#[derive(Clone, Copy)]
struct HeaderColumn<'a> {
    list: &'a ListArray,
    /// `None` when the entries are not `struct<utf8, binary>`: every row reads as no headers.
    entries: Option<(&'a StringArray, &'a BinaryArray)>,
}

impl<'a> HeaderColumn<'a> {
    fn new(list: &'a ListArray) -> Self {
        let entries = list.values().as_any().downcast_ref::<StructArray>().and_then(|s| {
            Some((
                s.column(0).as_any().downcast_ref::<StringArray>()?,
                s.column(1).as_any().downcast_ref::<BinaryArray>()?,
            ))
        });
        Self { list, entries }
    }

    fn row(&self, i: usize) -> Vec<Header> {
        let Some((names, values)) = self.entries else { return Vec::new() };
        if self.list.is_null(i) {
            return Vec::new();
        }
        let offsets = self.list.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        (start..end)
            .filter(|&j| names.is_valid(j))
            .map(|j| Header { name: names.value(j).to_owned(), value: bytes_at(values, j).unwrap_or_default() })
            .collect()
    }
}

/// Values at least this long are shared with the batch's buffer rather than copied (a body);
/// shorter ones (a header value) cost less to copy than to share.
const SHARE_AT: usize = 512;

/// Row `i` of a binary column: `None` when null. A long value is a view of the batch's buffer,
/// not a copy: a record's bodies keep that buffer (the column's values for the batch) alive for
/// as long as they live, which in every reader is about as long as the batch.
fn bytes_at(a: &BinaryArray, i: usize) -> Option<Bytes> {
    if !a.is_valid(i) {
        return None;
    }
    let offsets = a.value_offsets();
    let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
    Some(if end - start >= SHARE_AT {
        Bytes::from_owner(a.values().slice_with_length(start, end - start))
    } else {
        Bytes::copy_from_slice(a.value(i))
    })
}

/// A column that a projection may have left out: `None` when absent, an error when present with
/// the wrong type.
fn opt_column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a T>, DecodeError> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(_) => column(batch, name).map(Some),
    }
}

/// One side's columns; any of them may be projected away, and the record's field is then empty.
struct SideArrays<'a> {
    status: Option<&'a UInt16Array>,
    headers: Option<HeaderColumn<'a>>,
    body: Option<&'a BinaryArray>,
    truncated: Option<&'a BooleanArray>,
    latency: Option<&'a UInt64Array>,
    ttfb: Option<&'a UInt64Array>,
    error: Option<&'a StringArray>,
    trailers: Option<HeaderColumn<'a>>,
}

impl<'a> SideArrays<'a> {
    fn new(batch: &'a RecordBatch, c: &SideColumns) -> Result<Self, DecodeError> {
        Ok(Self {
            status: opt_column(batch, c.status)?,
            headers: opt_column(batch, c.headers)?.map(HeaderColumn::new),
            body: opt_column(batch, c.body)?,
            truncated: opt_column(batch, c.body_truncated)?,
            latency: opt_column(batch, c.latency_us)?,
            ttfb: opt_column(batch, c.ttfb_us)?,
            error: opt_column(batch, c.error)?,
            trailers: opt_column(batch, c.trailers)?.map(HeaderColumn::new),
        })
    }

    fn record(&self, i: usize) -> SideRecord {
        SideRecord {
            status: self.status.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            headers: self.headers.map(|h| h.row(i)).unwrap_or_default(),
            body: self.body.and_then(|a| bytes_at(a, i)),
            body_truncated: self.truncated.is_some_and(|a| a.is_valid(i) && a.value(i)),
            latency_us: self.latency.and_then(|a| opt_u64(a, i)),
            ttfb_us: self.ttfb.and_then(|a| opt_u64(a, i)),
            error: self.error.and_then(|a| opt_str(a, i)),
            trailers: self.trailers.map(|h| h.row(i)).unwrap_or_default(),
        }
    }
}

/// Decode a batch of the canonical pair schema into records. `pair_id`, `captured_at`, `agent`,
/// `method` and `path` are required; every other column may have been projected away, leaving
/// its field empty (so a reader that needs no response bodies need not decompress them).
pub fn batch_to_records(batch: &RecordBatch) -> Result<Vec<PairRecord>, DecodeError> {
    let pair_id: &StringArray = column(batch, schema::PAIR_ID)?;
    let captured_at: &TimestampMicrosecondArray = column(batch, schema::CAPTURED_AT)?;
    let agent: &StringArray = column(batch, schema::AGENT)?;
    let method: &StringArray = column(batch, schema::METHOD)?;
    let path: &StringArray = column(batch, schema::PATH)?;
    let query: Option<&StringArray> = opt_column(batch, schema::QUERY)?;
    let req_headers = opt_column::<ListArray>(batch, schema::REQUEST_HEADERS)?.map(HeaderColumn::new);
    let req_body: Option<&BinaryArray> = opt_column(batch, schema::REQUEST_BODY)?;
    let req_trunc: Option<&BooleanArray> = opt_column(batch, schema::REQUEST_BODY_TRUNCATED)?;
    let baseline = SideArrays::new(batch, &schema::BASELINE)?;
    let canary = SideArrays::new(batch, &schema::CANARY)?;
    let secondary = SideArrays::new(batch, &schema::SECONDARY)?;

    (0..batch.num_rows())
        .map(|i| {
            let micros = captured_at.value(i);
            let captured_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| DecodeError {
                column: schema::CAPTURED_AT.into(),
                row: i,
                message: format!("{micros} µs is outside the representable time range"),
            })?;
            Ok(PairRecord {
                pair_id: required_str(pair_id, schema::PAIR_ID, i)?,
                captured_at,
                agent: required_str(agent, schema::AGENT, i)?,
                method: required_str(method, schema::METHOD, i)?,
                path: required_str(path, schema::PATH, i)?,
                query: query.and_then(|a| opt_str(a, i)),
                request_headers: req_headers.map(|h| h.row(i)).unwrap_or_default(),
                request_body: req_body.and_then(|a| bytes_at(a, i)),
                request_body_truncated: req_trunc.is_some_and(|a| a.is_valid(i) && a.value(i)),
                baseline: baseline.record(i),
                canary: canary.record(i),
                secondary: secondary.record(i),
            })
        })
        .collect()
}

/// The Arrow field of a pair column, for callers that project.
pub fn field(name: &str) -> Option<&'static Field> {
    SCHEMA.fields().iter().find(|f| f.name() == name).map(|f| f.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(i: u32) -> PairRecord {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_000 + i64::from(i)).expect("valid time");
        let mut r =
            PairRecord::new("agent-a", at, "GET", format!("/users/{i}"), i.is_multiple_of(2).then(|| "x=1".to_owned()));
        r.request_headers = vec![Header::new("accept", "application/json"), Header::new("x-bin", vec![0xff, 0x00])];
        r.baseline = SideRecord {
            status: Some(200),
            headers: vec![Header::new("content-type", "application/json")],
            body: Some(Bytes::from(format!("{{\"id\":{i}}}"))),
            body_truncated: false,
            latency_us: Some(1200),
            ttfb_us: Some(900),
            error: None,
            trailers: if i.is_multiple_of(3) { vec![Header::new("grpc-status", "0")] } else { Vec::new() },
        };
        r.canary = SideRecord::failed(schema::error_kind::TIMEOUT);
        r
    }

    #[test]
    fn round_trip() {
        let records: Vec<_> = (0..5).map(sample).collect();
        let batch = records_to_batch(&records).expect("encode");
        assert_eq!(batch.num_rows(), 5);
        let back = batch_to_records(&batch).expect("decode");
        assert_eq!(back, records);
    }

    #[test]
    fn projected_batches_decode_with_empty_fields() {
        let records: Vec<_> = (0..3).map(sample).collect();
        let batch = records_to_batch(&records).expect("encode");
        let keep: Vec<usize> = [
            schema::PAIR_ID,
            schema::CAPTURED_AT,
            schema::AGENT,
            schema::METHOD,
            schema::PATH,
            schema::BASELINE.status,
        ]
        .iter()
        .map(|c| SCHEMA.index_of(c).expect("column"))
        .collect();
        let back = batch_to_records(&batch.project(&keep).expect("project")).expect("decode");
        assert_eq!(back[0].path, records[0].path);
        assert_eq!(back[0].baseline.status, Some(200));
        assert!(back[0].baseline.body.is_none() && back[0].request_headers.is_empty() && back[0].canary.is_absent());
        let without_path: Vec<usize> = keep[..4].to_vec();
        assert!(batch_to_records(&batch.project(&without_path).expect("project")).is_err());
    }

    /// Long bodies are views of the batch's body buffer, short ones and header values copies;
    /// either way the records read back equal the ones written, nulls and empty values included.
    #[test]
    fn long_bodies_are_shared_with_the_batch_and_read_back_whole() {
        let mut records: Vec<_> = (0..4).map(sample).collect();
        records[0].baseline.body = Some(Bytes::from(vec![b'x'; 4096]));
        records[1].baseline.body = Some(Bytes::from(vec![b'y'; SHARE_AT - 1]));
        records[2].baseline.body = Some(Bytes::new());
        records[3].baseline.body = None;
        records[3].request_headers.push(Header::new("x-long", vec![b'h'; 2 * SHARE_AT]));
        let batch = records_to_batch(&records).expect("encode");
        let back = batch_to_records(&batch).expect("decode");
        assert_eq!(back, records);
        let column: &BinaryArray = column(&batch, schema::BASELINE.body).expect("body column");
        let buffer = column.values().as_slice().as_ptr_range();
        let within = |b: &Bytes| buffer.contains(&b.as_ptr());
        assert!(within(back[0].baseline.body.as_ref().expect("body")), "a long body is a view");
        assert!(!within(back[1].baseline.body.as_ref().expect("body")), "a short one is a copy");
        drop(batch);
        assert_eq!(back[0].baseline.body.as_deref(), Some(&[b'x'; 4096][..]), "the view outlives the batch");
    }

    #[test]
    fn empty_batch() {
        let batch = records_to_batch(&[]).expect("encode");
        assert_eq!(batch.num_rows(), 0);
        assert!(batch_to_records(&batch).expect("decode").is_empty());
    }
}
