//! Reading `mongoexport` output as a stream of documents, each with the line it starts on: one
//! document per line (the default), or one JSON array (`--jsonArray`, on one line or spread
//! over many). The file is never read whole: memory is bounded by the largest document, and a
//! document larger than MongoDB's own limit (16 MiB) is reported and skipped, not buffered.
//!
//! Extended JSON (relaxed and canonical: `{"$oid": …}`, `{"$date": "ISO"}`,
//! `{"$date": {"$numberLong": "ms"}}`, `{"$numberLong": …}`, …) is turned into BSON values by the
//! `bson` crate's own Extended JSON parser.

use std::io::BufRead;

/// MongoDB refuses documents over 16 MiB; a longer one here is damage, not data.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// One document read from a file: the line it starts on, and its JSON text (borrowed from the
/// reader until the next call), or why no document could be cut out there.
#[derive(Debug)]
pub struct RawDocument<'a> {
    pub line: u64,
    pub json: Result<&'a [u8], String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Not known until the first non-blank byte.
    Unknown,
    /// One document per line.
    Lines,
    /// A JSON array of documents.
    Array,
    /// The array's closing `]` was read (or the input ended).
    Done,
}

/// The documents of one `mongoexport` file, in order.
pub struct DocumentReader<R: BufRead> {
    input: R,
    layout: Layout,
    /// The line the reader is on (1-based).
    line: u64,
    /// Bytes consumed so far (for progress).
    consumed: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> DocumentReader<R> {
    pub fn new(input: R) -> DocumentReader<R> {
        DocumentReader {
            input,
            layout: Layout::Unknown,
            line: 1,
            consumed: 0,
            buf: Vec::new(),
        }
    }

    /// The line the reader has got to (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// How many bytes of the input have been read.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next document, `Ok(None)` at the end, or the I/O error that stopped reading.
    pub fn next_document(&mut self) -> std::io::Result<Option<RawDocument<'_>>> {
        loop {
            match self.layout {
                Layout::Done => return Ok(None),
                Layout::Unknown => {
                    // Skip blank space (and a UTF-8 byte order mark) to see how the file starts.
                    match self.peek_byte()? {
                        None => {
                            self.layout = Layout::Done;
                        }
                        Some(b'[') => {
                            self.advance(1);
                            self.layout = Layout::Array;
                        }
                        Some(b) if b.is_ascii_whitespace() || b >= 0x80 && self.is_bom()? => {
                            self.skip_blank_or_bom()?;
                        }
                        Some(_) => self.layout = Layout::Lines,
                    }
                }
                Layout::Lines => return self.next_line_document(),
                Layout::Array => return self.next_array_element(),
            }
        }
    }

    fn peek_byte(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn is_bom(&mut self) -> std::io::Result<bool> {
        Ok(self.input.fill_buf()?.starts_with(&[0xEF, 0xBB, 0xBF]))
    }

    fn skip_blank_or_bom(&mut self) -> std::io::Result<()> {
        if self.is_bom()? {
            self.advance(3);
            return Ok(());
        }
        if let Some(b) = self.peek_byte()? {
            if b == b'\n' {
                self.line += 1;
            }
            self.advance(1);
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.input.consume(n);
        self.consumed += n as u64;
    }

    /// Lines layout: the next non-blank line is one document.
    fn next_line_document(&mut self) -> std::io::Result<Option<RawDocument<'_>>> {
        loop {
            self.buf.clear();
            let line = self.line;
            let (read, too_long) = self.read_line_bounded()?;
            if read == 0 {
                self.layout = Layout::Done;
                return Ok(None);
            }
            self.line += 1;
            if too_long {
                return Ok(Some(RawDocument {
                    line,
                    json: Err(too_long_message()),
                }));
            }
            if trim_ascii(&self.buf).is_empty() {
                continue;
            }
            return Ok(Some(RawDocument {
                line,
                json: Ok(trim_ascii(&self.buf)),
            }));
        }
    }

    /// Reads up to and including the next `\n` into `buf`, keeping at most
    /// `MAX_DOCUMENT_BYTES` (the rest of a longer line is read and dropped). Returns the bytes
    /// read and whether the line was too long.
    fn read_line_bounded(&mut self) -> std::io::Result<(usize, bool)> {
        let mut read = 0;
        let mut too_long = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_DOCUMENT_BYTES.saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            self.advance(take);
            read += take;
            if done {
                break;
            }
        }
        Ok((read, too_long))
    }

    /// Array layout: the next element, skipping the commas and blank space between elements.
    fn next_array_element(&mut self) -> std::io::Result<Option<RawDocument<'_>>> {
        // Between elements.
        loop {
            match self.peek_byte()? {
                None => {
                    self.layout = Layout::Done;
                    return Ok(None);
                }
                Some(b']') => {
                    self.advance(1);
                    self.layout = Layout::Done;
                    return Ok(None);
                }
                Some(b',') => self.advance(1),
                Some(b) if b.is_ascii_whitespace() => self.skip_blank_or_bom()?,
                Some(_) => break,
            }
        }
        let line = self.line;
        self.buf.clear();
        match self.peek_byte()? {
            Some(b'{') => {}
            _ => {
                // Not an object: drop everything up to the next top-level comma, `]` or end of
                // line, and report it.
                self.skip_to_separator()?;
                return Ok(Some(RawDocument {
                    line,
                    json: Err("not JSON (expected a document in the array)".into()),
                }));
            }
        }
        // Copy one balanced `{…}`, minding strings and escapes.
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut too_long = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                self.layout = Layout::Done;
                return Ok(Some(RawDocument {
                    line,
                    json: Err("not JSON (the document is cut off at the end of the file)".into()),
                }));
            }
            let mut end = None;
            let mut newlines = 0;
            for (i, &b) in chunk.iter().enumerate() {
                if b == b'\n' {
                    newlines += 1;
                }
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    } else if b == b'\n' {
                        // A raw newline cannot be inside a JSON string: this document is
                        // broken. End it here so the next line can still be read.
                        end = Some(i + 1);
                        break;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let take = end.unwrap_or(chunk.len());
            let room = MAX_DOCUMENT_BYTES.saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            self.advance(take);
            self.line += newlines;
            if end.is_some() {
                break;
            }
        }
        let json = if too_long {
            Err(too_long_message())
        } else {
            Ok(trim_ascii(&self.buf))
        };
        Ok(Some(RawDocument { line, json }))
    }

    fn skip_to_separator(&mut self) -> std::io::Result<()> {
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            match chunk.iter().position(|&b| matches!(b, b',' | b']' | b'\n')) {
                Some(i) => {
                    self.advance(i);
                    return Ok(());
                }
                None => {
                    let n = chunk.len();
                    self.advance(n);
                }
            }
        }
    }
}

fn too_long_message() -> String {
    format!(
        "the document is longer than {} MiB (MongoDB's limit)",
        MAX_DOCUMENT_BYTES / (1024 * 1024)
    )
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// One document's text → a BSON document. The `bson` crate's own deserializer reads Extended
/// JSON (relaxed and canonical: `$oid`, `$date` with an ISO string or `$numberLong`,
/// `$numberInt`, `$numberLong`, …) straight from the JSON text.
pub fn parse_document(json: &[u8]) -> Result<bson::Document, String> {
    parse_as::<bson::Document>(json)
}

/// One document's text → `T`, whose Extended JSON fields are `bson` types (read by the `bson`
/// crate's deserializer) and the rest plain serde fields; `T` may borrow strings from `json`.
/// For messages, of which there may be millions: no map of every key is built, and unknown
/// fields (`_id`, …) are skipped unread.
pub fn parse_as<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Result<T, String> {
    // mongoexport --jsonArray puts a comma after each document on its own line in some versions.
    let json = json.strip_suffix(b",").unwrap_or(json);
    if json.first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                Ok(_) => "not a document (expected a JSON object)".to_string(),
                Err(e) => format!("not JSON ({e})"),
            },
        );
    }
    serde_json::from_slice::<T>(json).map_err(|e| {
        if e.is_data() {
            format!("not valid Extended JSON ({e})")
        } else {
            format!("not JSON ({e})")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Vec<(u64, Result<bson::Document, String>)> {
        let mut r = DocumentReader::new(std::io::BufReader::with_capacity(7, text.as_bytes()));
        let mut out = Vec::new();
        while let Some(d) = r.next_document().unwrap() {
            out.push((d.line, d.json.and_then(parse_document)));
        }
        out
    }

    #[test]
    fn lines_report_the_line_of_each_document_and_of_broken_ones() {
        let docs = read_all(
            "{\"a\": 1}\n\n{\"b\": {\"$date\": \"2025-11-17T10:00:00Z\"}}\nnot json\n{\"c\": 3}",
        );
        let lines: Vec<u64> = docs.iter().map(|d| d.0).collect();
        assert_eq!(lines, vec![1, 3, 4, 5]);
        assert!(docs[0].1.is_ok() && docs[1].1.is_ok() && docs[3].1.is_ok());
        assert!(matches!(
            docs[1].1.as_ref().unwrap().get("b"),
            Some(bson::Bson::DateTime(_))
        ));
        assert!(docs[2].1.as_ref().unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn arrays_on_one_line_or_many_with_a_broken_element() {
        let one = read_all(r#"[{"a":1},{"b":"x}y"},{"c":{"$oid":"5f1d7f3e9c1b2a0012345678"}}]"#);
        assert_eq!(one.len(), 3);
        assert!(one.iter().all(|d| d.0 == 1 && d.1.is_ok()));
        let many = read_all(
            "[\n  {\"a\": 1},\n  {\"b\": \"cut\n  {\"c\": 2},\n  42,\n  {\"d\": [1, {\"e\": 2}]}\n]\n",
        );
        let lines: Vec<u64> = many.iter().map(|d| d.0).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(many[0].1.is_ok());
        assert!(many[1].1.is_err(), "{:?}", many[1]);
        assert!(many[2].1.is_ok(), "{:?}", many[2]);
        assert!(many[3].1.is_err());
        assert!(many[4].1.is_ok());
    }

    #[test]
    fn a_cut_off_array_and_an_empty_file_end_cleanly() {
        assert!(read_all("").is_empty());
        assert!(read_all("[]").is_empty());
        let cut = read_all("[{\"a\": 1}, {\"b\": ");
        assert_eq!(cut.len(), 2);
        assert!(cut[1].1.as_ref().unwrap_err().contains("cut off"));
    }
}
