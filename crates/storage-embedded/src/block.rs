//! Immutable blocks: one Apache Parquet file of spans each, one row per
//! span, sorted by trace id, zstd-compressed (docs/embedded-store-schema.md
//! lists the columns). Tag keys common in a block get a typed column of
//! their own (`tags.<key>`), which compresses and filters far better than a
//! key/value list; the others go to `other_tags`. `tag_order` keeps the
//! order the tags came in, so a span reads back exactly as written.
//!
//! A block's metadata lives in memory while the store is open: its time
//! range, services and operations (from the file's key/value metadata) and a
//! sorted index of its trace ids with each trace's first row, so a lookup
//! by trace id reads only the pages that hold the trace.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder,
    GenericByteBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    StringDictionaryBuilder, StructBuilder, TimestampNanosecondBuilder,
};
use arrow_array::types::{BinaryType, ByteArrayType, Int32Type, Utf8Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, DictionaryArray, FixedSizeBinaryArray,
    Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use prost::Message;
use serde::{Deserialize, Serialize};
use spoor_model::{KeyValue, Process, RefType, Span, SpanId, SpanKind, SpanRef, TraceId, Value};
use spoor_proto::api_v2;
use spoor_storage::{Operation, StorageError, TraceQuery};

use crate::backend;

/// The maps of the write and read paths, keyed by tag keys and ids: the
/// standard library's SipHash showed in the ingest profile.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use crate::objects::{ObjectReader, ObjectWriter, Objects};
use spoor_model::time::unix_nanos;

/// At most this many tag keys get a column of their own in one block.
const MAX_DEDICATED: usize = 64;
/// `tag_order` byte of a tag taken from `other_tags`.
const OTHER: u8 = u8::MAX;
/// Rows per data page: a trace lookup decodes about one page per column.
const PAGE_ROWS: usize = 1024;
const ROW_GROUP_ROWS: usize = 128 * 1024;
const BATCH_ROWS: usize = 8192;
const META_KEY: &str = "spoor.block";
const TAG_PREFIX: &str = "tags.";

/// What a block's footer says of it, besides Parquet's own metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub spans: u64,
    pub min_start_ns: u64,
    pub max_start_ns: u64,
    /// service -> (operation, span kind) pairs
    pub operations: BTreeMap<String, BTreeSet<(String, String)>>,
    /// The blocks this one was compacted from: deleted when found at open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<u64>,
}

impl Summary {
    pub fn operations(&self) -> impl Iterator<Item = (&str, Operation)> + '_ {
        self.operations.iter().flat_map(|(service, ops)| {
            ops.iter().map(move |(name, kind)| {
                (
                    service.as_str(),
                    Operation {
                        name: name.clone(),
                        span_kind: SpanKind::parse(kind),
                    },
                )
            })
        })
    }
}

/// A tag key with a column of its own, and the column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ValueType {
    Str,
    Bool,
    Int,
    Double,
    Bytes,
}

fn type_of(v: &Value) -> ValueType {
    match v {
        Value::String(_) => ValueType::Str,
        Value::Bool(_) => ValueType::Bool,
        Value::Int64(_) => ValueType::Int,
        Value::Float64(_) => ValueType::Double,
        Value::Binary(_) => ValueType::Bytes,
    }
}

fn data_type(t: ValueType) -> DataType {
    match t {
        ValueType::Str => DataType::Utf8,
        ValueType::Bool => DataType::Boolean,
        ValueType::Int => DataType::Int64,
        ValueType::Double => DataType::Float64,
        ValueType::Bytes => DataType::Binary,
    }
}

fn type_from(dt: &DataType) -> Option<ValueType> {
    Some(match dt {
        DataType::Utf8 => ValueType::Str,
        DataType::Boolean => ValueType::Bool,
        DataType::Int64 => ValueType::Int,
        DataType::Float64 => ValueType::Double,
        DataType::Binary => ValueType::Bytes,
        _ => return None,
    })
}

/// Keys found on at least a sixteenth of the sample's spans, each with the
/// type most of its values have (values of another type go to
/// `other_tags`), most frequent first.
fn choose_dedicated(sample: &[Span]) -> Vec<(String, ValueType)> {
    let mut seen: HashMap<(&str, ValueType), usize> = HashMap::default();
    for span in sample {
        for kv in &span.tags {
            *seen
                .entry((kv.key.as_str(), type_of(&kv.value)))
                .or_default() += 1;
        }
    }
    let mut best: HashMap<&str, (usize, ValueType)> = HashMap::default();
    for ((key, t), n) in seen {
        let e = best.entry(key).or_insert((n, t));
        if (n, t as u8) > (e.0, e.1 as u8) {
            *e = (n, t);
        }
    }
    let mut keys: Vec<(usize, &str, ValueType)> = best
        .into_iter()
        .map(|(k, (n, t))| (n, k, t))
        .filter(|(n, _, _)| *n * 16 >= sample.len())
        .collect();
    keys.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    keys.truncate(MAX_DEDICATED);
    keys.into_iter()
        .map(|(_, k, t)| (k.to_string(), t))
        .collect()
}

/// A column with more distinct values than this in the sample is written
/// without a dictionary: a reader decompresses a column chunk's whole
/// dictionary to read one page of it, which for nearly unique values costs
/// more than it saves.
const MAX_DICTIONARY_VALUES: usize = 1024;

/// The dedicated keys whose values in the sample are mostly distinct.
fn high_cardinality<'a>(sample: &[Span], dedicated: &'a [(String, ValueType)]) -> Vec<&'a str> {
    dedicated
        .iter()
        .filter(|(key, _)| {
            let mut values = HashSet::default();
            for kv in sample
                .iter()
                .flat_map(|s| &s.tags)
                .filter(|kv| kv.key == *key)
            {
                values.insert(kv.value.as_string());
                if values.len() > MAX_DICTIONARY_VALUES {
                    return true;
                }
            }
            false
        })
        .map(|(key, _)| key.as_str())
        .collect()
}

fn id_field(name: &str, len: i32, nullable: bool) -> Field {
    Field::new(name, DataType::FixedSizeBinary(len), nullable)
}

fn dict_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        false,
    )
}

fn other_tag_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("str", DataType::Utf8, true),
        Field::new("bool", DataType::Boolean, true),
        Field::new("int", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("bytes", DataType::Binary, true),
    ])
}

fn schema(dedicated: &[(String, ValueType)]) -> SchemaRef {
    let mut fields = vec![
        id_field("trace_id", 16, false),
        id_field("span_id", 8, false),
        dict_field("service"),
        dict_field("operation"),
        Field::new(
            "start_time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("flags", DataType::Int32, false),
        id_field("parent_span_id", 8, true),
        Field::new("references", DataType::Binary, true),
        Field::new(
            "process_tags",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Binary)),
            true,
        ),
        Field::new("tag_order", DataType::Binary, false),
    ];
    for (key, t) in dedicated {
        fields.push(Field::new(
            format!("{TAG_PREFIX}{key}"),
            data_type(*t),
            true,
        ));
    }
    fields.push(Field::new(
        "other_tags",
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(other_tag_fields()),
            true,
        ))),
        true,
    ));
    fields.push(Field::new("logs", DataType::Binary, true));
    fields.push(Field::new(
        "warnings",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    Arc::new(Schema::new(fields))
}

/// Span references beyond the parent, logs: protobuf, as api_v2 has them.
#[derive(Clone, PartialEq, prost::Message)]
struct References {
    #[prost(message, repeated, tag = "1")]
    references: Vec<api_v2::SpanRef>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Logs {
    #[prost(message, repeated, tag = "1")]
    logs: Vec<api_v2::Log>,
}

/// A dictionary-encoded column whose keys the caller appends. Its values
/// are the block's: every batch carries all of them, and the Parquet
/// writer keeps the ones a row group uses.
struct DictColumn<T: ByteArrayType> {
    keys: Int32Builder,
    values: GenericByteBuilder<T>,
    index: HashMap<Box<[u8]>, i32>,
    /// `values` as an array, while no value was added since.
    finished: Option<ArrayRef>,
}

impl<T: ByteArrayType> Default for DictColumn<T> {
    fn default() -> Self {
        DictColumn {
            keys: Int32Builder::new(),
            values: GenericByteBuilder::new(),
            index: HashMap::default(),
            finished: None,
        }
    }
}

impl<T: ByteArrayType> DictColumn<T>
where
    T::Native: AsRef<[u8]>,
{
    fn key_of(&mut self, value: &T::Native) -> i32 {
        let bytes: &[u8] = value.as_ref();
        if let Some(&key) = self.index.get(bytes) {
            return key;
        }
        let key = self.values.len() as i32;
        self.values.append_value(value);
        self.index.insert(bytes.into(), key);
        self.finished = None;
        key
    }

    fn finish(&mut self) -> DictionaryArray<Int32Type> {
        let values = self
            .finished
            .get_or_insert_with(|| Arc::new(self.values.finish_cloned()));
        DictionaryArray::new(self.keys.finish(), Arc::clone(values))
    }
}

/// The `service` and `process_tags` columns. Spans of one request share
/// their `Arc<Process>` (the decoders and the block reader make one per
/// resource), so a process is known by its address: its tags are encoded
/// and its keys found once per block, and a row costs one lookup by
/// address.
#[derive(Default)]
struct ProcessColumns {
    service: DictColumn<Utf8Type>,
    tags: DictColumn<BinaryType>,
    /// Keys by address, of the processes in `held`, which keeps each alive
    /// so no address is reused while it is a key.
    by_address: HashMap<usize, (i32, Option<i32>)>,
    held: Vec<Arc<Process>>,
}

/// Processes known by address in one block at most: past this, at the end
/// of a batch, they are forgotten and the dictionaries start again.
const MAX_PROCESSES: usize = 1 << 16;

impl ProcessColumns {
    fn append(&mut self, process: &Arc<Process>) {
        let address = Arc::as_ptr(process) as usize;
        let (service, tags) = match self.by_address.get(&address) {
            Some(&keys) => keys,
            None => {
                let service = self.service.key_of(process.service_name.as_str());
                let tags = (!process.tags.is_empty()).then(|| {
                    let encoded = spoor_proto::process_to_proto(process).encode_to_vec();
                    self.tags.key_of(encoded.as_slice())
                });
                self.by_address.insert(address, (service, tags));
                self.held.push(Arc::clone(process));
                (service, tags)
            }
        };
        self.service.keys.append_value(service);
        self.tags.keys.append_option(tags);
    }

    /// The batch's `service` and `process_tags` arrays.
    fn finish(&mut self) -> (DictionaryArray<Int32Type>, DictionaryArray<Int32Type>) {
        let arrays = (self.service.finish(), self.tags.finish());
        if self.held.len() > MAX_PROCESSES {
            *self = ProcessColumns::default();
        }
        arrays
    }
}

enum TagBuilder {
    Str(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Double(Float64Builder),
    Bytes(BinaryBuilder),
}

impl TagBuilder {
    fn new(t: ValueType) -> Self {
        match t {
            ValueType::Str => TagBuilder::Str(StringBuilder::new()),
            ValueType::Bool => TagBuilder::Bool(BooleanBuilder::new()),
            ValueType::Int => TagBuilder::Int(Int64Builder::new()),
            ValueType::Double => TagBuilder::Double(Float64Builder::new()),
            ValueType::Bytes => TagBuilder::Bytes(BinaryBuilder::new()),
        }
    }

    /// Appends `v`, which has this column's type.
    fn append(&mut self, v: Option<&Value>) {
        match (self, v) {
            (TagBuilder::Str(b), Some(Value::String(s))) => b.append_value(s),
            (TagBuilder::Bool(b), Some(Value::Bool(x))) => b.append_value(*x),
            (TagBuilder::Int(b), Some(Value::Int64(x))) => b.append_value(*x),
            (TagBuilder::Double(b), Some(Value::Float64(x))) => b.append_value(*x),
            (TagBuilder::Bytes(b), Some(Value::Binary(x))) => b.append_value(x),
            (TagBuilder::Str(b), _) => b.append_null(),
            (TagBuilder::Bool(b), _) => b.append_null(),
            (TagBuilder::Int(b), _) => b.append_null(),
            (TagBuilder::Double(b), _) => b.append_null(),
            (TagBuilder::Bytes(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            TagBuilder::Str(b) => Arc::new(b.finish()),
            TagBuilder::Bool(b) => Arc::new(b.finish()),
            TagBuilder::Int(b) => Arc::new(b.finish()),
            TagBuilder::Double(b) => Arc::new(b.finish()),
            TagBuilder::Bytes(b) => Arc::new(b.finish()),
        }
    }
}

/// Columns being filled, one batch at a time.
struct Columns {
    schema: SchemaRef,
    dedicated: Vec<(String, ValueType)>,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    /// `service` and `process_tags`
    processes: ProcessColumns,
    operation: StringDictionaryBuilder<Int32Type>,
    start: TimestampNanosecondBuilder,
    duration: Int64Builder,
    flags: Int32Builder,
    parent: FixedSizeBinaryBuilder,
    references: BinaryBuilder,
    tag_order: BinaryBuilder,
    tags: Vec<TagBuilder>,
    other_tags: ListBuilder<StructBuilder>,
    logs: BinaryBuilder,
    warnings: ListBuilder<StringBuilder>,
    rows: usize,
    /// Each dedicated key's column.
    column_of: HashMap<String, usize>,
    /// Per span, reused: the tag order and which columns got a value.
    order: Vec<u8>,
    placed: Vec<bool>,
}

impl Columns {
    fn new(dedicated: Vec<(String, ValueType)>) -> Self {
        let other = StructBuilder::from_fields(other_tag_fields(), 0);
        Columns {
            schema: schema(&dedicated),
            tags: dedicated.iter().map(|(_, t)| TagBuilder::new(*t)).collect(),
            dedicated,
            trace_id: FixedSizeBinaryBuilder::new(16),
            span_id: FixedSizeBinaryBuilder::new(8),
            processes: ProcessColumns::default(),
            operation: StringDictionaryBuilder::new(),
            start: TimestampNanosecondBuilder::new(),
            duration: Int64Builder::new(),
            flags: Int32Builder::new(),
            parent: FixedSizeBinaryBuilder::new(8),
            references: BinaryBuilder::new(),
            tag_order: BinaryBuilder::new(),
            other_tags: ListBuilder::new(other),
            logs: BinaryBuilder::new(),
            warnings: ListBuilder::new(StringBuilder::new()),
            rows: 0,
            column_of: HashMap::default(),
            order: Vec::new(),
            placed: Vec::new(),
        }
        .with_columns()
    }

    fn with_columns(mut self) -> Self {
        self.column_of = self
            .dedicated
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        self.placed = vec![false; self.dedicated.len()];
        self
    }

    /// Appends one span's row; returns its kind (from its `span.kind` tag).
    fn push(&mut self, span: &Span) -> SpanKind {
        self.trace_id
            .append_value(span.trace_id.0.to_be_bytes())
            .expect("16 bytes");
        self.span_id
            .append_value(span.span_id.to_bytes())
            .expect("8 bytes");
        self.processes.append(&span.process);
        self.operation.append_value(&span.operation_name);
        self.start.append_value(unix_nanos(span.start_time) as i64);
        self.duration
            .append_value(span.duration.as_nanos().min(i64::MAX as u128) as i64);
        self.flags.append_value(span.flags as i32);
        let references = &span.references;
        let parent = references
            .first()
            .filter(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id)
            .map(|r| r.span_id);
        match parent {
            Some(id) => self.parent.append_value(id.to_bytes()).expect("8 bytes"),
            None => self.parent.append_null(),
        }
        let rest = &references[usize::from(parent.is_some())..];
        if rest.is_empty() {
            self.references.append_null();
        } else {
            let msg = References {
                references: rest.iter().map(spoor_proto::span_ref_to_proto).collect(),
            };
            self.references.append_value(msg.encode_to_vec());
        }
        // each tag to its column when it has one (the first of a key only)
        let mut order = std::mem::take(&mut self.order);
        let mut placed = std::mem::take(&mut self.placed);
        order.clear();
        placed.iter_mut().for_each(|p| *p = false);
        let mut others = Vec::new();
        let mut kind = None;
        let (column_of, dedicated, tags) = (&self.column_of, &self.dedicated, &mut self.tags);
        for kv in &span.tags {
            if kind.is_none() && kv.key == spoor_model::SPAN_KIND_TAG {
                kind = Some(match &kv.value {
                    Value::String(s) => SpanKind::parse(s),
                    _ => SpanKind::Unspecified,
                });
            }
            let column = column_of
                .get(kv.key.as_str())
                .copied()
                .filter(|&i| dedicated[i].1 == type_of(&kv.value) && !placed[i]);
            match column {
                Some(i) => {
                    placed[i] = true;
                    // columns are filled in tag order; the ones a span lacks get a null below
                    tags[i].append(Some(&kv.value));
                    order.push(i as u8);
                }
                None => {
                    others.push(kv);
                    order.push(OTHER);
                }
            }
        }
        for (builder, placed) in self.tags.iter_mut().zip(&placed) {
            if !placed {
                builder.append(None);
            }
        }
        self.tag_order.append_value(&order);
        self.order = order;
        self.placed = placed;
        if others.is_empty() {
            self.other_tags.append_null();
        } else {
            let s = self.other_tags.values();
            for kv in others {
                let value = &kv.value;
                s.field_builder::<StringBuilder>(0)
                    .expect("key")
                    .append_value(&kv.key);
                s.field_builder::<StringBuilder>(1)
                    .expect("str")
                    .append_option(match value {
                        Value::String(x) => Some(x.as_str()),
                        _ => None,
                    });
                s.field_builder::<BooleanBuilder>(2)
                    .expect("bool")
                    .append_option(match *value {
                        Value::Bool(b) => Some(b),
                        _ => None,
                    });
                s.field_builder::<Int64Builder>(3)
                    .expect("int")
                    .append_option(match *value {
                        Value::Int64(i) => Some(i),
                        _ => None,
                    });
                s.field_builder::<Float64Builder>(4)
                    .expect("double")
                    .append_option(match *value {
                        Value::Float64(f) => Some(f),
                        _ => None,
                    });
                s.field_builder::<BinaryBuilder>(5)
                    .expect("bytes")
                    .append_option(match value {
                        Value::Binary(b) => Some(b.as_slice()),
                        _ => None,
                    });
                s.append(true);
            }
            self.other_tags.append(true);
        }
        if span.logs.is_empty() {
            self.logs.append_null();
        } else {
            let msg = Logs {
                logs: span.logs.iter().map(spoor_proto::log_to_proto).collect(),
            };
            self.logs.append_value(msg.encode_to_vec());
        }
        if span.warnings.is_empty() {
            self.warnings.append_null();
        } else {
            for w in &span.warnings {
                self.warnings.values().append_value(w);
            }
            self.warnings.append(true);
        }
        self.rows += 1;
        kind.unwrap_or(SpanKind::Unspecified)
    }

    fn finish(&mut self) -> Result<RecordBatch, StorageError> {
        let (service, process_tags) = self.processes.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(service),
            Arc::new(self.operation.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.references.finish()),
            Arc::new(process_tags),
            Arc::new(self.tag_order.finish()),
        ];
        columns.extend(self.tags.iter_mut().map(TagBuilder::finish));
        columns.push(Arc::new(self.other_tags.finish()));
        columns.push(Arc::new(self.logs.finish()));
        columns.push(Arc::new(self.warnings.finish()));
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(backend)
    }
}

/// Spans whose tags choose a block's dedicated columns (a key on 1/16 of
/// them shows about 500 times). They are clones: more cost ingest time.
pub const SAMPLE_SPANS: usize = 8192;

/// Writes the traces `ids` (ascending), each read with `fetch`, to new
/// block `id`, which appears whole or not at all.
#[cfg(test)]
pub fn write(
    objects: &Arc<Objects>,
    id: u64,
    ids: &[TraceId],
    mut fetch: impl FnMut(TraceId) -> Vec<Span>,
) -> Result<Summary, StorageError> {
    let mut sample = Vec::new();
    for id in ids {
        if sample.len() >= SAMPLE_SPANS {
            break;
        }
        sample.extend(fetch(*id));
    }
    let mut writer = BlockWriter::create(objects, id, &sample, Vec::new())?;
    drop(sample);
    for id in ids {
        for span in fetch(*id) {
            writer.push(&span)?;
        }
    }
    writer.finish()
}

/// Writes every trace of `head` to new block `id`, in trace id order.
pub fn write_head(
    objects: &Arc<Objects>,
    id: u64,
    head: &crate::head::Head,
) -> Result<Summary, StorageError> {
    let ids = head.trace_ids();
    let mut sample = Vec::new();
    for id in &ids {
        if sample.len() >= SAMPLE_SPANS {
            break;
        }
        head.visit_trace(*id, |s| sample.push(s.clone()));
    }
    let mut writer = BlockWriter::create(objects, id, &sample, Vec::new())?;
    drop(sample);
    let mut failed = None;
    for id in ids {
        head.visit_trace(id, |span| {
            if failed.is_none()
                && let Err(e) = writer.push(span)
            {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    writer.finish()
}

/// A block being written, span by span in trace id order.
pub struct BlockWriter {
    columns: Columns,
    writer: ArrowWriter<ObjectWriter>,
    summary: Summary,
}

impl BlockWriter {
    /// Starts block `id`, its tag columns chosen from `sample`; `replaces`
    /// names the blocks it is made from (compaction).
    pub fn create(
        objects: &Arc<Objects>,
        id: u64,
        sample: &[Span],
        replaces: Vec<u64>,
    ) -> Result<Self, StorageError> {
        let dedicated = choose_dedicated(sample);
        let plain: Vec<String> = high_cardinality(sample, &dedicated)
            .into_iter()
            .map(|key| format!("{TAG_PREFIX}{key}"))
            .collect();
        let columns = Columns::new(dedicated);
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(backend)?))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // the store prunes by its own summaries: Parquet's statistics
            // are kept for the columns other readers filter on most
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("start_time"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("trace_id"), EnabledStatistics::Chunk);
        // random span ids do not compress: spare zstd the work (parent ids
        // do: siblings share theirs)
        props =
            props.set_column_compression(ColumnPath::from("span_id"), Compression::UNCOMPRESSED);
        // ids and times are nearly all distinct: a dictionary would only be
        // built to be dropped; zstd takes the repeats of a trace's id
        let unique = [
            "trace_id",
            "span_id",
            "parent_span_id",
            "start_time",
            "duration_ns",
            "references",
            "logs",
        ];
        for name in unique
            .iter()
            .copied()
            .chain(plain.iter().map(String::as_str))
        {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
        }
        let object = objects.create(Objects::location(id));
        let writer = ArrowWriter::try_new(object, Arc::clone(&columns.schema), Some(props.build()))
            .map_err(backend)?;
        Ok(BlockWriter {
            columns,
            writer,
            summary: Summary {
                min_start_ns: u64::MAX,
                replaces,
                ..Summary::default()
            },
        })
    }

    pub fn push(&mut self, span: &Span) -> Result<(), StorageError> {
        let kind = self.columns.push(span);
        self.summary.add(span, kind);
        if self.columns.rows == BATCH_ROWS {
            self.writer
                .write(&self.columns.finish()?)
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Writes the rest and the footer; the block exists, durably, when
    /// this returns.
    pub fn finish(mut self) -> Result<Summary, StorageError> {
        if self.columns.rows > 0 {
            self.writer
                .write(&self.columns.finish()?)
                .map_err(backend)?;
        }
        self.writer
            .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                META_KEY.to_string(),
                serde_json::to_string(&self.summary).map_err(backend)?,
            ));
        self.writer.into_inner().map_err(backend)?.finish()?;
        Ok(self.summary)
    }
}

impl Summary {
    fn add(&mut self, span: &Span, kind: SpanKind) {
        self.spans += 1;
        let start = unix_nanos(span.start_time);
        self.min_start_ns = self.min_start_ns.min(start);
        self.max_start_ns = self.max_start_ns.max(start);
        let kind = kind.as_str();
        let service = &span.process.service_name;
        let operation = span.operation_name.as_str();
        let ops = match self.operations.get_mut(service) {
            Some(ops) => ops,
            None => self.operations.entry(service.clone()).or_default(),
        };
        if !ops.iter().any(|(n, k)| n == operation && k == kind) {
            ops.insert((operation.to_string(), kind.to_string()));
        }
    }
}

/// An open block: its file's metadata and the trace index, in memory.
pub struct Block {
    pub id: u64,
    file: ObjectReader,
    /// Where each column chunk starts: a read ahead stops at the next one.
    chunk_starts: Arc<[u64]>,
    /// Set when the block left the store: deleted when its last reader is
    /// done with it.
    retired: AtomicBool,
    pub summary: Summary,
    pub file_bytes: u64,
    metadata: ArrowReaderMetadata,
    /// Distinct trace ids, ascending, with the first row and the start (the
    /// earliest of its spans here) of each; `rows` ends the last trace.
    trace_ids: Vec<u128>,
    first_rows: Vec<u32>,
    starts: Vec<u64>,
    rows: u32,
    dedicated: Vec<(String, ValueType)>,
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.retired.load(Ordering::Acquire) {
            self.file.delete_later();
        }
    }
}

/// The columns a search filters on before it reads anything else.
const KEY_COLUMNS: [&str; 5] = [
    "trace_id",
    "service",
    "operation",
    "start_time",
    "duration_ns",
];

impl Block {
    /// Opens block `id`: reads its footer and its trace id and start time
    /// columns.
    pub fn open(objects: &Arc<Objects>, id: u64) -> Result<Block, StorageError> {
        let location = Objects::location(id);
        let file_bytes = objects.size(&location)?;
        let file = objects.reader(location, file_bytes, Arc::from(Vec::new()));
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let metadata = ArrowReaderMetadata::load(&file, options).map_err(backend)?;
        let summary: Summary = metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kvs| kvs.iter().find(|kv| kv.key == META_KEY))
            .and_then(|kv| kv.value.as_deref())
            .map(serde_json::from_str)
            .transpose()
            .map_err(backend)?
            .ok_or_else(|| backend(format!("block {id}: not a Spoor block")))?;
        let dedicated = metadata
            .schema()
            .fields()
            .iter()
            .filter_map(|f| {
                let key = f.name().strip_prefix(TAG_PREFIX)?;
                Some((key.to_string(), type_from(f.data_type())?))
            })
            .collect();
        let mut chunk_starts: Vec<u64> = metadata
            .metadata()
            .row_groups()
            .iter()
            .flat_map(|g| g.columns().iter().map(|c| c.byte_range().0))
            .collect();
        chunk_starts.sort_unstable();
        let chunk_starts: Arc<[u64]> = Arc::from(chunk_starts);
        let mut block = Block {
            id,
            file: file.planned(Arc::clone(&chunk_starts), Vec::new()),
            chunk_starts,
            retired: AtomicBool::new(false),
            summary,
            file_bytes,
            metadata,
            trace_ids: Vec::new(),
            first_rows: Vec::new(),
            starts: Vec::new(),
            rows: 0,
            dedicated,
        };
        let mut row = 0u32;
        for batch in block.read(Some(&["trace_id", "start_time"]), None)? {
            let ids: &FixedSizeBinaryArray = column(&batch, "trace_id")?;
            let starts: &TimestampNanosecondArray = column(&batch, "start_time")?;
            for i in 0..ids.len() {
                let id = u128::from_be_bytes(ids.value(i).try_into().map_err(backend)?);
                let start = starts.value(i) as u64;
                if block.trace_ids.last() == Some(&id) {
                    let last = block.starts.last_mut().expect("one per trace");
                    *last = (*last).min(start);
                } else {
                    block.trace_ids.push(id);
                    block.first_rows.push(row);
                    block.starts.push(start);
                }
                row += 1;
            }
        }
        block.rows = row;
        Ok(block)
    }

    /// Marks the block as gone from the store: its object is deleted when
    /// the last reader drops it.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Deletes the block's object now; it must be retired and unshared.
    pub async fn delete(self) -> Result<(), StorageError> {
        self.retired.store(false, Ordering::Release);
        self.file.delete().await
    }

    fn index_of(&self, id: TraceId) -> Option<usize> {
        self.trace_ids.binary_search(&id.0).ok()
    }

    /// The start of trace `id` here (its earliest span in this block).
    pub fn trace_start(&self, id: TraceId) -> Option<SystemTime> {
        let i = self.index_of(id)?;
        Some(UNIX_EPOCH + Duration::from_nanos(self.starts[i]))
    }

    /// Bytes the block holds in memory: its index and Parquet metadata.
    pub fn memory_bytes(&self) -> usize {
        self.trace_ids.len() * (16 + 4 + 8) + self.metadata.metadata().memory_size()
    }

    /// Reads `columns` (all with None) of the rows in `rows` (all with None).
    fn read(
        &self,
        columns: Option<&[&str]>,
        rows: Option<(u32, u32)>,
    ) -> Result<Vec<RecordBatch>, StorageError> {
        let reader = self.reader_of(columns, rows)?;
        reader.map(|b| b.map_err(backend)).collect()
    }

    /// A reader of `columns` over `rows` that fetches, for each row group
    /// it reads, every byte range it will decode there in one request: the
    /// column chunks, or with a row range, only the pages holding its rows.
    fn reader_of(
        &self,
        columns: Option<&[&str]>,
        rows: Option<(u32, u32)>,
    ) -> Result<ParquetRecordBatchReader, StorageError> {
        let meta = self.metadata.metadata();
        let mask = columns.map(|columns| {
            let schema = self.metadata.schema();
            let indices: Vec<usize> = columns
                .iter()
                .filter_map(|c| schema.index_of(c).ok())
                .collect();
            ProjectionMask::roots(self.metadata.parquet_schema(), indices)
        });
        let (start, end) = rows.map_or((0, u64::MAX), |(s, e)| (s as u64, e as u64));
        let (mut groups, mut plan) = (Vec::new(), Vec::new());
        let mut first = 0u64;
        let mut skip = None;
        for (g, group) in meta.row_groups().iter().enumerate() {
            let n = group.num_rows() as u64;
            let (lo, hi) = (start.max(first), end.min(first + n));
            if lo < hi {
                skip.get_or_insert(lo - first);
                groups.push(g);
                let pages = rows.map(|_| meta.page_index_for_row_group(g));
                let mut ranges = Vec::new();
                for (c, chunk) in group.columns().iter().enumerate() {
                    if !mask.as_ref().is_none_or(|m| m.leaf_included(c)) {
                        continue;
                    }
                    let (at, len) = chunk.byte_range();
                    match pages.as_ref().and_then(|p| p.page_locations(c)) {
                        Some(pages) if !pages.is_empty() => {
                            // the dictionary page precedes the first data page
                            if (pages[0].offset as u64) > at {
                                ranges.push(at..pages[0].offset as u64);
                            }
                            for (i, page) in pages.iter().enumerate() {
                                let page_end = pages
                                    .get(i + 1)
                                    .map_or(n, |next| next.first_row_index as u64);
                                if (page.first_row_index as u64) < hi - first
                                    && page_end > lo - first
                                {
                                    let from = page.offset as u64;
                                    ranges.push(from..from + page.compressed_page_size as u64);
                                }
                            }
                        }
                        _ => ranges.push(at..at + len),
                    }
                }
                plan.push(ranges);
            }
            first += n;
        }
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.file.planned(Arc::clone(&self.chunk_starts), plan),
            self.metadata.clone(),
        )
        .with_batch_size(BATCH_ROWS)
        .with_row_groups(groups);
        if let Some(mask) = mask {
            builder = builder.with_projection(mask);
        }
        if let Some((s, e)) = rows {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(skip.unwrap_or(0) as usize),
                RowSelector::select(e.saturating_sub(s) as usize),
            ]));
        }
        builder.build().map_err(backend)
    }

    /// The spans of trace `id` in this block.
    pub fn trace(&self, id: TraceId) -> Result<Vec<Span>, StorageError> {
        let Some(i) = self.index_of(id) else {
            return Ok(Vec::new());
        };
        let end = self.first_rows.get(i + 1).copied().unwrap_or(self.rows);
        let mut spans = Vec::new();
        for batch in self.read(None, Some((self.first_rows[i], end)))? {
            let columns = SpanColumns::new(&batch, &self.dedicated)?;
            spans.extend(
                (0..batch.num_rows())
                    .map(|r| columns.span(r))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(spans)
    }

    /// Calls `visit` with every span of the block, in row order.
    #[cfg(test)]
    pub fn for_each_span(&self, mut visit: impl FnMut(Span)) -> Result<(), StorageError> {
        for spans in self.batches()? {
            spans?.into_iter().for_each(&mut visit);
        }
        Ok(())
    }

    /// The block's spans in row order (trace id order), a batch at a time.
    pub fn batches(
        &self,
    ) -> Result<impl Iterator<Item = Result<Vec<Span>, StorageError>> + '_, StorageError> {
        let reader = self.reader_of(None, None)?;
        Ok(reader.map(move |batch| {
            let batch = batch.map_err(backend)?;
            let columns = SpanColumns::new(&batch, &self.dedicated)?;
            (0..batch.num_rows()).map(|r| columns.span(r)).collect()
        }))
    }

    /// Whether the block can hold a span matching `q`, from its summary alone.
    fn may_match(&self, q: &TraceQuery) -> bool {
        let Some(ops) = self.summary.operations.get(&q.service_name) else {
            return false;
        };
        let (min, max) = (unix_nanos(q.start_time_min), unix_nanos(q.start_time_max));
        max >= self.summary.min_start_ns
            && min <= self.summary.max_start_ns
            && q.operation_name
                .as_ref()
                .is_none_or(|op| ops.iter().any(|(n, _)| n == op))
    }

    /// The traces with a span matching `q`, with their starts here, newest
    /// first, at most `limit`.
    pub fn search(
        &self,
        q: &TraceQuery,
        limit: usize,
    ) -> Result<Vec<(TraceId, SystemTime)>, StorageError> {
        if !self.may_match(q) {
            return Ok(Vec::new());
        }
        let (min, max) = (
            unix_nanos(q.start_time_min) as i64,
            unix_nanos(q.start_time_max) as i64,
        );
        let (dmin, dmax) = (
            q.duration_min
                .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64),
            q.duration_max
                .map_or(i64::MAX, |d| d.as_nanos().min(i64::MAX as u128) as i64),
        );
        // a tag may be in its own column, in other_tags, in the process's
        // tags or in a log's fields: read those columns, not the whole span
        let mut columns: Vec<String> = KEY_COLUMNS.iter().map(|c| c.to_string()).collect();
        if !q.tags.is_empty() {
            columns.extend(["other_tags", "process_tags", "logs"].map(String::from));
            for (key, _) in &q.tags {
                if self.dedicated.iter().any(|(k, _)| k == key) {
                    columns.push(format!("{TAG_PREFIX}{key}"));
                }
            }
        }
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut found: Vec<usize> = Vec::new();
        for batch in self.read(Some(&columns), None)? {
            let ids: &FixedSizeBinaryArray = column(&batch, "trace_id")?;
            let services: &DictionaryArray<Int32Type> = column(&batch, "service")?;
            let operations: &DictionaryArray<Int32Type> = column(&batch, "operation")?;
            let starts: &TimestampNanosecondArray = column(&batch, "start_time")?;
            let durations: &Int64Array = column(&batch, "duration_ns")?;
            let Some(service) = dict_key(services, &q.service_name)? else {
                continue;
            };
            let operation = match &q.operation_name {
                None => None,
                Some(op) => match dict_key(operations, op)? {
                    Some(k) => Some(k),
                    None => continue,
                },
            };
            let tags = if q.tags.is_empty() {
                None
            } else {
                Some(TagColumns::new(&batch, &self.dedicated, &q.tags)?)
            };
            let (service_keys, operation_keys) = (services.keys(), operations.keys());
            for row in 0..batch.num_rows() {
                if service_keys.value(row) != service
                    || operation.is_some_and(|k| operation_keys.value(row) != k)
                    || !(min..=max).contains(&starts.value(row))
                    || !(dmin..=dmax).contains(&durations.value(row))
                {
                    continue;
                }
                if let Some(tags) = &tags
                    && !tags.all(row)?
                {
                    continue;
                }
                let id = u128::from_be_bytes(ids.value(row).try_into().map_err(backend)?);
                let i = self
                    .trace_ids
                    .binary_search(&id)
                    .map_err(|_| backend("trace index out of date"))?;
                if found.last() != Some(&i) {
                    found.push(i);
                }
            }
        }
        found.sort_by(|a, b| {
            (self.starts[*b], self.trace_ids[*b]).cmp(&(self.starts[*a], self.trace_ids[*a]))
        });
        found.truncate(limit);
        Ok(found
            .into_iter()
            .map(|i| {
                (
                    TraceId(self.trace_ids[i]),
                    UNIX_EPOCH + Duration::from_nanos(self.starts[i]),
                )
            })
            .collect())
    }

    /// (trace, span, service, parent span) of every span that started
    /// within `[min, max]`, and the services of all spans of those traces'
    /// rows, for the dependency graph.
    pub fn calls(
        &self,
        min: SystemTime,
        max: SystemTime,
        counter: &mut spoor_storage::DependencyCounter,
    ) -> Result<(), StorageError> {
        let (min, max) = (unix_nanos(min), unix_nanos(max));
        if max < self.summary.min_start_ns || min > self.summary.max_start_ns {
            return Ok(());
        }
        let mut trace: Option<u128> = None;
        let mut service_of: HashMap<u64, String> = HashMap::default();
        let mut children: Vec<(u64, String)> = Vec::new();
        let mut flush = |service_of: &mut HashMap<u64, String>,
                         children: &mut Vec<(u64, String)>| {
            for (parent, child) in children.drain(..) {
                if let Some(p) = service_of.get(&parent)
                    && *p != child
                {
                    counter.add_call(p, &child);
                }
            }
            service_of.clear();
        };
        for batch in self.read(
            Some(&[
                "trace_id",
                "span_id",
                "service",
                "start_time",
                "parent_span_id",
            ]),
            None,
        )? {
            let ids: &FixedSizeBinaryArray = column(&batch, "trace_id")?;
            let span_ids: &FixedSizeBinaryArray = column(&batch, "span_id")?;
            let services = dict_values(&batch, "service")?;
            let starts: &TimestampNanosecondArray = column(&batch, "start_time")?;
            let parents: &FixedSizeBinaryArray = column(&batch, "parent_span_id")?;
            for (row, service) in services.into_iter().enumerate() {
                let id = u128::from_be_bytes(ids.value(row).try_into().map_err(backend)?);
                if trace != Some(id) {
                    flush(&mut service_of, &mut children);
                    trace = Some(id);
                }
                let span = u64::from_be_bytes(span_ids.value(row).try_into().map_err(backend)?);
                let start = starts.value(row) as u64;
                if parents.is_valid(row) && (min..=max).contains(&start) {
                    let parent =
                        u64::from_be_bytes(parents.value(row).try_into().map_err(backend)?);
                    children.push((parent, service.clone()));
                }
                service_of.insert(span, service);
            }
        }
        flush(&mut service_of, &mut children);
        Ok(())
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, StorageError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| backend(format!("block column {name} missing or of the wrong type")))
}

fn strings(dict: &DictionaryArray<Int32Type>) -> Result<&StringArray, StorageError> {
    dict.values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| backend("dictionary column: not strings"))
}

/// The key of `value` in a dictionary column, when the batch has it.
fn dict_key(dict: &DictionaryArray<Int32Type>, value: &str) -> Result<Option<i32>, StorageError> {
    let values = strings(dict)?;
    Ok((0..values.len())
        .find(|&i| values.value(i) == value)
        .map(|i| i as i32))
}

fn dict_values(batch: &RecordBatch, name: &str) -> Result<Vec<String>, StorageError> {
    let dict: &DictionaryArray<Int32Type> = column(batch, name)?;
    let values = strings(dict)?;
    let names: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
    Ok(dict
        .keys()
        .iter()
        .map(|k| names[k.unwrap_or(0) as usize].to_string())
        .collect())
}

/// A query tag's value as the typed value a column must hold to match it:
/// a value matches when Jaeger's rendering of it (decimal numbers,
/// true/false, lowercase hex) is the query's text.
enum Matcher<'a> {
    Never,
    Str(&'a StringArray, &'a str),
    Bool(&'a BooleanArray, bool),
    Int(&'a Int64Array, i64),
    Double(&'a Float64Array, u64),
    Bytes(&'a BinaryArray, Vec<u8>),
}

impl<'a> Matcher<'a> {
    fn new(t: ValueType, array: &'a ArrayRef, text: &'a str) -> Matcher<'a> {
        let any = array.as_any();
        let renders = |v: Value| (v.as_string() == text).then_some(v);
        let m = match t {
            ValueType::Str => any.downcast_ref().map(|a| Matcher::Str(a, text)),
            ValueType::Bool => match text {
                "true" | "false" => any.downcast_ref().map(|a| Matcher::Bool(a, text == "true")),
                _ => None,
            },
            ValueType::Int => text
                .parse()
                .ok()
                .and_then(|n| renders(Value::Int64(n)))
                .and_then(|v| match v {
                    Value::Int64(n) => any.downcast_ref().map(|a| Matcher::Int(a, n)),
                    _ => None,
                }),
            ValueType::Double => text
                .parse()
                .ok()
                .and_then(|f| renders(Value::Float64(f)))
                .and_then(|v| match v {
                    Value::Float64(f) => {
                        any.downcast_ref().map(|a| Matcher::Double(a, f.to_bits()))
                    }
                    _ => None,
                }),
            ValueType::Bytes => spoor_model::hex::decode(text)
                .and_then(|b| any.downcast_ref().map(|a| Matcher::Bytes(a, b))),
        };
        m.unwrap_or(Matcher::Never)
    }

    fn matches(&self, row: usize) -> bool {
        match self {
            Matcher::Never => false,
            Matcher::Str(a, t) => a.is_valid(row) && a.value(row) == *t,
            Matcher::Bool(a, b) => a.is_valid(row) && a.value(row) == *b,
            Matcher::Int(a, n) => a.is_valid(row) && a.value(row) == *n,
            Matcher::Double(a, bits) => a.is_valid(row) && a.value(row).to_bits() == *bits,
            Matcher::Bytes(a, b) => a.is_valid(row) && a.value(row) == b.as_slice(),
        }
    }
}

/// One query tag, prepared for a batch.
struct TagCheck<'a> {
    key: &'a str,
    text: &'a str,
    /// The key's own column, when the block has one.
    column: Matcher<'a>,
    /// Per process in the batch's dictionary: whether its tags have the tag.
    in_process: Vec<bool>,
}

/// The columns a tag can be found in, for a search with tags.
struct TagColumns<'a> {
    checks: Vec<TagCheck<'a>>,
    other_tags: &'a ListArray,
    process_keys: &'a arrow_array::PrimitiveArray<Int32Type>,
    logs: &'a BinaryArray,
}

fn text_matches(v: &Value, text: &str) -> bool {
    v.as_string() == text
}

impl<'a> TagColumns<'a> {
    fn new(
        b: &'a RecordBatch,
        dedicated: &'a [(String, ValueType)],
        tags: &'a [(String, String)],
    ) -> Result<Self, StorageError> {
        let processes: &DictionaryArray<Int32Type> = column(b, "process_tags")?;
        let encoded = processes
            .values()
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| backend("process_tags: not binary"))?;
        let process_tags: Vec<Vec<KeyValue>> = (0..encoded.len())
            .map(|i| {
                let p = api_v2::Process::decode(encoded.value(i)).map_err(backend)?;
                spoor_proto::kvs_from_proto(p.tags).map_err(backend)
            })
            .collect::<Result<_, _>>()?;
        let checks = tags
            .iter()
            .map(|(key, text)| {
                let column = dedicated
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(k, t)| {
                        let array = b.column_by_name(&format!("{TAG_PREFIX}{k}"))?;
                        Some(Matcher::new(*t, array, text))
                    })
                    .unwrap_or(Matcher::Never);
                let in_process = process_tags
                    .iter()
                    .map(|tags| {
                        tags.iter()
                            .any(|kv| kv.key == *key && text_matches(&kv.value, text))
                    })
                    .collect();
                TagCheck {
                    key,
                    text,
                    column,
                    in_process,
                }
            })
            .collect();
        Ok(TagColumns {
            checks,
            other_tags: column(b, "other_tags")?,
            process_keys: processes.keys(),
            logs: column(b, "logs")?,
        })
    }

    /// Whether the span in `row` has every query tag, each in its tags, its
    /// process's tags or a log's fields (Jaeger's rule).
    fn all(&self, row: usize) -> Result<bool, StorageError> {
        for check in &self.checks {
            if !self.has(row, check)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn has(&self, row: usize, check: &TagCheck) -> Result<bool, StorageError> {
        if check.column.matches(row) {
            return Ok(true);
        }
        if self.process_keys.is_valid(row)
            && check.in_process[self.process_keys.value(row) as usize]
        {
            return Ok(true);
        }
        let hit = |kv: &KeyValue| kv.key == check.key && text_matches(&kv.value, check.text);
        if self.other_tags.is_valid(row) {
            let items = self.other_tags.value(row);
            let s = items
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| backend("other_tags: not a struct list"))?;
            if other_kvs(s)?.iter().any(hit) {
                return Ok(true);
            }
        }
        if self.logs.is_valid(row) {
            let logs = Logs::decode(self.logs.value(row)).map_err(backend)?;
            for log in logs.logs {
                let fields = spoor_proto::kvs_from_proto(log.fields).map_err(backend)?;
                if fields.iter().any(hit) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// (service, dictionary key of the process tags) -> the process, shared by its spans.
type ProcessCache = HashMap<(String, Option<i32>), Arc<Process>>;

/// The columns of one batch, turned back into spans row by row.
struct SpanColumns<'a> {
    dedicated: &'a [(String, ValueType)],
    trace_ids: &'a FixedSizeBinaryArray,
    span_ids: &'a FixedSizeBinaryArray,
    services: Vec<String>,
    operations: Vec<String>,
    starts: &'a TimestampNanosecondArray,
    durations: &'a Int64Array,
    flags: &'a Int32Array,
    parents: &'a FixedSizeBinaryArray,
    references: &'a BinaryArray,
    process_tags: &'a DictionaryArray<Int32Type>,
    tag_order: &'a BinaryArray,
    tags: Vec<&'a ArrayRef>,
    other_tags: &'a ListArray,
    logs: &'a BinaryArray,
    warnings: &'a ListArray,
    processes: std::cell::RefCell<ProcessCache>,
}

impl<'a> SpanColumns<'a> {
    fn new(b: &'a RecordBatch, dedicated: &'a [(String, ValueType)]) -> Result<Self, StorageError> {
        Ok(SpanColumns {
            dedicated,
            trace_ids: column(b, "trace_id")?,
            span_ids: column(b, "span_id")?,
            services: dict_values(b, "service")?,
            operations: dict_values(b, "operation")?,
            starts: column(b, "start_time")?,
            durations: column(b, "duration_ns")?,
            flags: column(b, "flags")?,
            parents: column(b, "parent_span_id")?,
            references: column(b, "references")?,
            process_tags: column(b, "process_tags")?,
            tag_order: column(b, "tag_order")?,
            tags: dedicated
                .iter()
                .map(|(k, _)| {
                    b.column_by_name(&format!("{TAG_PREFIX}{k}"))
                        .ok_or_else(|| backend(format!("block column {TAG_PREFIX}{k} missing")))
                })
                .collect::<Result<_, _>>()?,
            other_tags: column(b, "other_tags")?,
            logs: column(b, "logs")?,
            warnings: column(b, "warnings")?,
            processes: Default::default(),
        })
    }

    fn process(&self, row: usize) -> Result<Arc<Process>, StorageError> {
        let service = &self.services[row];
        let key = self
            .process_tags
            .is_valid(row)
            .then(|| self.process_tags.keys().value(row));
        let mut cache = self.processes.borrow_mut();
        if let Some(p) = cache.get(&(service.clone(), key)) {
            return Ok(Arc::clone(p));
        }
        let tags = match key {
            None => Vec::new(),
            Some(k) => {
                let encoded = self
                    .process_tags
                    .values()
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| backend("process_tags: not binary"))?
                    .value(k as usize);
                let p = api_v2::Process::decode(encoded).map_err(backend)?;
                spoor_proto::kvs_from_proto(p.tags).map_err(backend)?
            }
        };
        let p = Arc::new(Process {
            service_name: service.clone(),
            tags,
        });
        cache.insert((service.clone(), key), Arc::clone(&p));
        Ok(p)
    }

    fn span(&self, row: usize) -> Result<Span, StorageError> {
        let trace_id = TraceId(u128::from_be_bytes(
            self.trace_ids.value(row).try_into().map_err(backend)?,
        ));
        let mut references = Vec::new();
        if self.parents.is_valid(row) {
            references.push(SpanRef {
                trace_id,
                span_id: SpanId::from_slice(self.parents.value(row)).map_err(backend)?,
                ref_type: RefType::ChildOf,
            });
        }
        if self.references.is_valid(row) {
            let msg = References::decode(self.references.value(row)).map_err(backend)?;
            for r in msg.references {
                references.push(spoor_proto::span_ref_from_proto(r).map_err(backend)?);
            }
        }
        let mut others = if self.other_tags.is_valid(row) {
            let items = self.other_tags.value(row);
            let s = items
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| backend("other_tags: not a struct list"))?;
            other_kvs(s)?
        } else {
            Vec::new()
        }
        .into_iter();
        let order = self.tag_order.value(row);
        let mut tags = Vec::with_capacity(order.len());
        for &slot in order {
            if slot == OTHER {
                tags.extend(others.next());
                continue;
            }
            let (key, t) = &self.dedicated[slot as usize];
            if let Some(value) = value_at(self.tags[slot as usize], *t, row) {
                tags.push(KeyValue::new(key.clone(), value));
            }
        }
        let logs = if self.logs.is_valid(row) {
            Logs::decode(self.logs.value(row))
                .map_err(backend)?
                .logs
                .into_iter()
                .map(spoor_proto::log_from_proto)
                .collect::<Result<_, _>>()
                .map_err(backend)?
        } else {
            Vec::new()
        };
        let warnings = if self.warnings.is_valid(row) {
            let w = self.warnings.value(row);
            let w = w
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| backend("warnings: not strings"))?;
            (0..w.len()).map(|i| w.value(i).to_string()).collect()
        } else {
            Vec::new()
        };
        Ok(Span {
            trace_id,
            span_id: SpanId::from_slice(self.span_ids.value(row)).map_err(backend)?,
            operation_name: self.operations[row].clone(),
            references,
            flags: self.flags.value(row) as u32,
            start_time: UNIX_EPOCH + Duration::from_nanos(self.starts.value(row) as u64),
            duration: Duration::from_nanos(self.durations.value(row) as u64),
            tags,
            logs,
            process: self.process(row)?,
            warnings,
        })
    }
}

fn value_at(array: &ArrayRef, t: ValueType, row: usize) -> Option<Value> {
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    Some(match t {
        ValueType::Str => Value::String(any.downcast_ref::<StringArray>()?.value(row).to_string()),
        ValueType::Bool => Value::Bool(any.downcast_ref::<BooleanArray>()?.value(row)),
        ValueType::Int => Value::Int64(any.downcast_ref::<Int64Array>()?.value(row)),
        ValueType::Double => Value::Float64(any.downcast_ref::<Float64Array>()?.value(row)),
        ValueType::Bytes => Value::Binary(any.downcast_ref::<BinaryArray>()?.value(row).to_vec()),
    })
}

fn other_kvs(s: &StructArray) -> Result<Vec<KeyValue>, StorageError> {
    let field = |i: usize| s.column(i);
    let keys = field(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| backend("other_tags.key"))?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        let value = [
            (1, ValueType::Str),
            (2, ValueType::Bool),
            (3, ValueType::Int),
            (4, ValueType::Double),
            (5, ValueType::Bytes),
        ]
        .into_iter()
        .find_map(|(c, t)| value_at(field(c), t, i))
        .unwrap_or(Value::String(String::new()));
        out.push(KeyValue::new(keys.value(i), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_model::Log;

    fn span(trace: u128, id: u64, tags: Vec<KeyValue>) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            operation_name: format!("op-{}", id % 3),
            references: if id > 1 {
                vec![SpanRef {
                    trace_id: TraceId(trace),
                    span_id: SpanId(id - 1),
                    ref_type: RefType::ChildOf,
                }]
            } else {
                vec![]
            },
            flags: 1,
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + id),
            duration: Duration::from_micros(id),
            tags,
            logs: vec![],
            process: Arc::new(Process {
                service_name: format!("svc-{}", trace % 2),
                tags: vec![KeyValue::string("host", "h1")],
            }),
            warnings: vec![],
        }
    }

    #[test]
    fn spans_read_back_exactly_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let mut traces = Vec::new();
        for t in 1..=50u128 {
            let mut spans: Vec<Span> = (1..=10)
                .map(|i| {
                    span(
                        t,
                        i,
                        vec![
                            KeyValue::string("span.kind", "server"),
                            KeyValue::new("http.status_code", Value::Int64(200 + i as i64)),
                            KeyValue::new("ratio", Value::Float64(i as f64 / 3.0)),
                        ],
                    )
                })
                .collect();
            // rare keys, a key twice, a key with two types, logs, links, warnings
            spans[0]
                .tags
                .insert(0, KeyValue::new("rare", Value::Bool(true)));
            spans[1].tags.push(KeyValue::string("span.kind", "client"));
            spans[2]
                .tags
                .push(KeyValue::new("http.status_code", Value::String("x".into())));
            spans[3]
                .tags
                .push(KeyValue::new("blob", Value::Binary(vec![1, 2, 3])));
            let at = spans[4].start_time;
            spans[4].logs.push(Log {
                timestamp: at,
                fields: vec![KeyValue::string("event", "retry")],
            });
            spans[5].references.insert(
                0,
                SpanRef {
                    trace_id: TraceId(999),
                    span_id: SpanId(7),
                    ref_type: RefType::FollowsFrom,
                },
            );
            spans[6].warnings.push("clock skew".into());
            spans[7].process = Arc::new(Process {
                service_name: "svc-x".into(),
                tags: vec![],
            });
            traces.push(spans);
        }
        let ids: Vec<TraceId> = traces.iter().map(|t| t[0].trace_id).collect();
        let summary = write(&objects, 1, &ids, |id| traces[id.0 as usize - 1].clone()).unwrap();
        assert_eq!(summary.spans, 500);
        let block = Block::open(&objects, 1).unwrap();
        assert_eq!(block.summary, summary);
        for spans in &traces {
            let got = block.trace(spans[0].trace_id).unwrap();
            assert_eq!(&got, spans);
        }
        assert!(block.trace(TraceId(51)).unwrap().is_empty());
        let mut all = Vec::new();
        block.for_each_span(|s| all.push(s)).unwrap();
        assert_eq!(all, traces.concat());
        let keys: Vec<&str> = block.dedicated.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["span.kind", "http.status_code", "ratio", "blob", "rare"]
        );
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;

    #[test]
    fn a_lookup_is_one_request_and_readers_do_not_disturb_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let process = Arc::new(Process {
            service_name: "svc".into(),
            tags: vec![],
        });
        let traces: Vec<Vec<Span>> = (1..=2000u128)
            .map(|t| {
                (1..=5u64)
                    .map(|i| Span {
                        trace_id: TraceId(t),
                        span_id: SpanId(i),
                        operation_name: format!("op-{i}"),
                        references: vec![],
                        flags: 1,
                        start_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                        duration: Duration::from_micros(t as u64),
                        tags: vec![KeyValue::string("k", format!("v-{t}-{i}"))],
                        logs: vec![],
                        process: Arc::clone(&process),
                        warnings: vec![],
                    })
                    .collect()
            })
            .collect();
        let ids: Vec<TraceId> = traces.iter().map(|t| t[0].trace_id).collect();
        write(&objects, 1, &ids, |id| traces[id.0 as usize - 1].clone()).unwrap();
        let block = Block::open(&objects, 1).unwrap();
        // a lookup fetches the pages holding its rows, in one request
        let (reads, bytes) = objects.reads();
        assert_eq!(block.trace(TraceId(1234)).unwrap(), traces[1233]);
        let (reads, bytes) = (objects.reads().0 - reads, objects.reads().1 - bytes);
        assert_eq!(reads, 1);
        assert!(
            bytes * 4 < block.file_bytes,
            "{bytes} of {}",
            block.file_bytes
        );
        std::thread::scope(|s| {
            for n in 0..8u128 {
                let (block, traces) = (&block, &traces);
                s.spawn(move || {
                    for t in (1 + n..=2000).step_by(37) {
                        assert_eq!(block.trace(TraceId(t)).unwrap(), traces[t as usize - 1]);
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;
    use spoor_model::Log;

    #[test]
    fn tags_match_by_their_rendering_in_columns_process_tags_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let process = Arc::new(Process {
            service_name: "svc".into(),
            tags: vec![KeyValue::string("host", "h7")],
        });
        let span = |trace: u128, tags: Vec<KeyValue>, logs: Vec<Log>| Span {
            trace_id: TraceId(trace),
            span_id: SpanId(1),
            operation_name: "op".into(),
            references: vec![],
            flags: 1,
            start_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + trace as u64),
            duration: Duration::from_millis(1),
            tags,
            logs,
            process: Arc::clone(&process),
            warnings: vec![],
        };
        let traces: Vec<Vec<Span>> = vec![
            vec![span(
                1,
                vec![
                    KeyValue::new("code", Value::Int64(200)),
                    KeyValue::new("ratio", Value::Float64(0.5)),
                    KeyValue::new("ok", Value::Bool(true)),
                    KeyValue::new("raw", Value::Binary(vec![0xab, 0x01])),
                ],
                vec![],
            )],
            vec![span(
                2,
                vec![
                    KeyValue::new("code", Value::Int64(500)),
                    KeyValue::new("ratio", Value::Float64(1.0)),
                    KeyValue::new("ok", Value::Bool(false)),
                    KeyValue::new("raw", Value::Binary(vec![])),
                ],
                vec![Log {
                    timestamp: UNIX_EPOCH,
                    fields: vec![KeyValue::string("event", "retry")],
                }],
            )],
        ];
        let ids: Vec<TraceId> = traces.iter().map(|t| t[0].trace_id).collect();
        write(&objects, 1, &ids, |id| traces[id.0 as usize - 1].clone()).unwrap();
        let block = Block::open(&objects, 1).unwrap();
        assert_eq!(block.dedicated.len(), 4);
        let found = |key: &str, value: &str| -> Vec<u128> {
            let q = TraceQuery {
                service_name: "svc".into(),
                operation_name: None,
                tags: vec![(key.into(), value.into())],
                start_time_min: UNIX_EPOCH,
                start_time_max: UNIX_EPOCH + Duration::from_secs(2_000_000_000),
                duration_min: None,
                duration_max: None,
                num_traces: 10,
            };
            let mut ids: Vec<u128> = block
                .search(&q, 10)
                .unwrap()
                .into_iter()
                .map(|(id, _)| id.0)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(found("code", "500"), [2]);
        assert_eq!(found("code", "0500"), Vec::<u128>::new());
        assert_eq!(found("ratio", "0.5"), [1]);
        assert_eq!(found("ratio", "1"), [2]);
        assert_eq!(found("ok", "true"), [1]);
        assert_eq!(found("raw", "ab01"), [1]);
        assert_eq!(found("raw", "AB01"), Vec::<u128>::new());
        assert_eq!(found("host", "h7"), [1, 2]);
        assert_eq!(found("event", "retry"), [2]);
        assert_eq!(found("nothere", "x"), Vec::<u128>::new());
    }
}
