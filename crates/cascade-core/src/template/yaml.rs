//! The YAML loader: builds one long-form JSON value from `saphyr-parser`'s events.
//!
//! A small recursive builder over the event stream, so that tags and scalar resolution
//! are entirely ours:
//! - `!Ref x` → `{"Ref": "x"}`, `!Condition x` → `{"Condition": "x"}`, `!GetAtt A.B` →
//!   `{"Fn::GetAtt": ["A", "B"]}`, and every other `!Name` → `{"Fn::Name": …}`, on scalars,
//!   sequences and mappings alike (as cfn-flip does). A tagged scalar keeps its text as a
//!   string (`!Ref 5` → `{"Ref": "5"}`), again as cfn-flip does.
//! - Standard tags (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`,
//!   `!!timestamp`) keep their YAML meaning; the non-specific tag `!` makes a string (as
//!   YAML says; PyYAML would resolve `! 123` as if untagged).
//! - Plain scalars resolve as YAML 1.1 ([`super::scalar`]); quoted and block scalars are
//!   strings.
//! - Anchors and aliases are expanded (with a budget against alias bombs) and merge keys
//!   (`<<`) are applied. cfn-flip rejects merge keys, and CloudFormation documents that it
//!   supports neither aliases nor merges, but reading them the YAML way loses nothing.
//! - A duplicate mapping key keeps its first place and takes its last value: CloudFormation
//!   deploys such templates that way (`validate-template` accepts them), cfn-flip reads
//!   them that way, and real public templates have them (two `Key:`/`Value:` pairs in one
//!   `Properties`, an output declared twice). The value dropped is not in the stack either.
//! - Lenient where YAML 1.1 readers (PyYAML, CloudFormation) are and saphyr (YAML 1.2) is
//!   not: where saphyr stops, the text is changed in a way that changes no value, and read
//!   again. Under-indented lines of a flow collection (`Resource: [` … with its `]` under
//!   the key) and of a quoted scalar's continuation are indented, tabs starting such a
//!   continuation line become spaces, and a `#` that starts a comment right after a token
//!   (`{a: 1}#c`) gets a space before it, and `\uD83D\uDE00` escapes one `\U` escape.
//!   `NEL` (U+0085) is a line break.
//!   Characters YAML does not allow (control characters but tab and line breaks) are an
//!   error, as in PyYAML. A byte order mark and CRLF line ends are read as usual.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};
use serde_json::{Map, Value};

use super::{TemplateError, scalar};

/// Deepest nesting of sequences and mappings accepted, the top-level mapping being level 1
/// (nodes are entered at depth 0): serde_json's own limit for JSON, so what reads here
/// prints as JSON and reads back. It was 128, one more than JSON takes: found by the fuzz
/// target `template` (the round trip).
const MAX_DEPTH: usize = super::MAX_NESTING;

/// Most under-indented flow collections and quoted scalars fixed in one template (each
/// fix costs a parse of the whole text).
const MAX_REINDENTS: usize = 1024;

/// Most characters parsed again after such fixes, so that a large text with many of them
/// stays quick to reject.
const MAX_REPARSED_CHARS: usize = 64 << 20;

/// Most nodes that aliases may copy in one template, against "billion laughs" inputs.
const MAX_ALIAS_NODES: usize = 1_000_000;

const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// Reads one YAML document whose top level is a mapping.
pub(crate) fn load(text: &str) -> Result<Value, TemplateError> {
    check_printable(text)?;
    let text = next_lines_as_line_feeds(text);
    let (mut text, completed) = complete_last_line(&text);
    let mut fixes = 0;
    let mut shifts = Shifts::default();
    loop {
        let eof = completed.then(|| text.chars().count());
        let mut loader = Loader::new(&text, eof);
        let result = loader.document();
        let fix = loader.fix;
        let Err(e) = result else {
            return result;
        };
        let fixed = match fix {
            _ if fixes >= MAX_REINDENTS || fixes * text.len() > MAX_REPARSED_CHARS => {
                Reindent::NotPossible
            }
            Some(Fix::Flow(at)) => reindent_flow(&text, at),
            Some(Fix::Quoted(at)) => reindent_quoted(&text, at),
            Some(Fix::TabsInQuoted(at)) => untab_line(&text, at),
            Some(Fix::SpaceBeforeComment(at)) => space_before_comment(&text, at),
            Some(Fix::SurrogatePairs(at)) => join_surrogate_pairs(&text, at),
            None => Reindent::NotPossible,
        };
        match fixed {
            Reindent::Fixed(fixed, added) if fixed != *text => {
                shifts.add(&added);
                text = Cow::Owned(fixed);
                fixes += 1;
            }
            Reindent::Unterminated => {
                let message = "invalid YAML: this quoted scalar is never closed".to_owned();
                return Err(shifts.unshift(TemplateError { message, ..e }));
            }
            _ => return Err(shifts.unshift(e)),
        }
    }
}

/// A PyYAML-style error for the first character that YAML does not allow in a text
/// (control characters other than tab and line breaks, `DEL`, C1 controls but `NEL`,
/// surrogates, `U+FFFE`, `U+FFFF`): PyYAML, and so cfn-flip, reject them, and a template
/// that holds one is damaged. saphyr would read most of them as content.
fn check_printable(text: &str) -> Result<(), TemplateError> {
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}')
            || matches!(c, '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
    };
    if text.chars().all(printable) {
        return Ok(());
    }
    let mut line = 1;
    let mut column = 1;
    for c in text.chars() {
        if !printable(c) {
            return Err(TemplateError {
                line,
                column,
                message: format!(
                    "invalid YAML: the character U+{:04X} is not allowed in a template \
                     (control characters other than tab and line breaks are not)",
                    u32::from(c)
                ),
            });
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Ok(())
}

/// The text with each `NEL` (U+0085) made a line feed, as YAML 1.1 readers (PyYAML, so
/// cfn-flip) read it: a line break, folded like one in flow scalars and `\n` in block
/// scalars. saphyr (YAML 1.2) reads it as an ordinary character.
fn next_lines_as_line_feeds(text: &str) -> Cow<'_, str> {
    if text.contains('\u{85}') {
        Cow::Owned(text.replace('\u{85}', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Spaces added at the start of lines by the re-indenting fixes, by line (from 1), so that
/// an error found afterwards is reported at its column in the original text.
#[derive(Default)]
struct Shifts(HashMap<usize, usize>);

impl Shifts {
    fn add(&mut self, added: &[(usize, usize)]) {
        for &(line, spaces) in added {
            *self.0.entry(line).or_default() += spaces;
        }
    }

    fn unshift(&self, mut e: TemplateError) -> TemplateError {
        if let Some(&spaces) = self.0.get(&e.line) {
            e.column = e.column.saturating_sub(spaces).max(1);
        }
        e
    }
}

/// The text to parse, and whether a final line break was added to it.
///
/// saphyr mishandles a block scalar that runs into the end of a text with no final line
/// break: `|` + "x" gives "x\n" (PyYAML and the YAML spec: "x"), and a last line of blanks
/// adds an extra "\n". Many templates end without a line break, so: a last line of blanks
/// is dropped (it means nothing), and otherwise a line break is added, which the loader
/// takes back off the block scalar that ends there (`Loader::eof`).
fn complete_last_line(text: &str) -> (Cow<'_, str>, bool) {
    let last_line_start = text.rfind('\n').map_or(0, |at| at + 1);
    let last_line = &text[last_line_start..];
    if last_line.is_empty() {
        (Cow::Borrowed(text), false)
    } else if last_line.trim_start_matches([' ', '\t', '\r']).is_empty() {
        (Cow::Borrowed(&text[..last_line_start]), false)
    } else {
        (Cow::Owned(format!("{text}\n")), true)
    }
}

/// A change to the text that YAML 1.1 readers would not need, found where saphyr stopped
/// (each position in characters).
#[derive(Clone, Copy)]
enum Fix {
    /// Indent the lines of the flow collection that starts here.
    Flow(usize),
    /// Indent the continuation lines of the quoted scalar that starts here.
    Quoted(usize),
    /// Make spaces of the tabs that start this continuation line of a quoted scalar.
    TabsInQuoted(usize),
    /// Put a space before the comment that starts here.
    SpaceBeforeComment(usize),
    /// Write the `\uD83D\uDE00` escapes of the double-quoted scalar that starts here as one.
    SurrogatePairs(usize),
}

enum Reindent {
    /// The new text, and the spaces added: (line from 1, spaces) for each line changed.
    Fixed(String, Vec<(usize, usize)>),
    Unterminated,
    NotPossible,
}

/// The text with the continuation lines of the quoted scalar that starts at character
/// `at` indented to its column.
///
/// YAML 1.2 (saphyr) wants those lines indented more than the enclosing block; YAML 1.1
/// readers (PyYAML, CloudFormation) accept any indentation, and templates rely on it, e.g.
/// a top-level `Description: 'long text` continued at column 1. Leading blanks of
/// continuation lines are folded away, so the value does not change.
fn reindent_quoted(text: &str, at: usize) -> Reindent {
    let Some((start, quote @ ('\'' | '"'))) = text.char_indices().nth(at) else {
        return Reindent::NotPossible;
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count();
    // Find the closing quote: '' escapes a single quote, \ escapes in double quotes.
    let body = &text[start + 1..];
    let mut chars = body.char_indices();
    let end = loop {
        let Some(next) = chars.next() else {
            return Reindent::Unterminated;
        };
        match next {
            (i, '\'') if quote == '\'' => {
                if body[i + 1..].starts_with('\'') {
                    chars.next();
                } else {
                    break start + 1 + i;
                }
            }
            (_, '\\') if quote == '"' => {
                chars.next();
            }
            (i, '"') if quote == '"' => break start + 1 + i,
            _ => {}
        }
    };
    indent_lines_after(text, start, end, column)
}

/// The text with spaces for the tabs that start the line holding character `at`, a
/// continuation line of a quoted scalar.
///
/// PyYAML folds tabs and spaces alike at the start of such lines; saphyr takes a tab there
/// for indentation. The line's leading blanks are folded away, so the value does not change.
fn untab_line(text: &str, at: usize) -> Reindent {
    let Some((tab, '\t')) = text.char_indices().nth(at) else {
        return Reindent::NotPossible;
    };
    let line_start = text[..tab].rfind('\n').map_or(0, |i| i + 1);
    let blanks =
        text[line_start..].len() - text[line_start..].trim_start_matches([' ', '\t']).len();
    let leading = text[line_start..line_start + blanks].replace('\t', " ");
    let fixed = format!(
        "{}{leading}{}",
        &text[..line_start],
        &text[line_start + blanks..]
    );
    Reindent::Fixed(fixed, Vec::new())
}

/// The text with a space before the comment that starts at character `at`.
///
/// PyYAML starts a comment at a `#` wherever a token may start, e.g. right after `}` or a
/// closing quote; saphyr (YAML 1.2) wants a space before it. A comment runs to the end of
/// its line, so no later column on the line moves.
fn space_before_comment(text: &str, at: usize) -> Reindent {
    let Some((hash, '#')) = text.char_indices().nth(at) else {
        return Reindent::NotPossible;
    };
    Reindent::Fixed(format!("{} {}", &text[..hash], &text[hash..]), Vec::new())
}

/// The text with each surrogate pair of `\u` escapes (`\uD83D\uDE00`) in the double-quoted
/// scalar that starts at character `at` written as the one `\U` escape it stands for.
///
/// PyYAML reads the two halves, which join into one character in any UTF-16 reader (and in
/// cfn-flip's JSON); saphyr rejects a `\u` escape of half a character. A lone half stays an
/// error.
fn join_surrogate_pairs(text: &str, at: usize) -> Reindent {
    let Some((quote, '"')) = text.char_indices().nth(at) else {
        return Reindent::NotPossible;
    };
    let hex_at = |i: usize| {
        text.get(i..i + 6)
            .and_then(|e| e.strip_prefix("\\u"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let mut fixed = String::with_capacity(text.len());
    fixed.push_str(&text[..=quote]);
    let mut joined = false;
    let mut i = quote + 1;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '"' => break,
            '\\' => {
                if let (Some(high @ 0xD800..=0xDBFF), Some(low @ 0xDC00..=0xDFFF)) =
                    (hex_at(i), hex_at(i + 6))
                {
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    fixed.push_str(&format!("\\U{code:08X}"));
                    joined = true;
                    i += 12;
                    continue;
                }
                // Any other escape: keep it and the character it escapes.
                let escaped = text[i + 1..].chars().next().map_or(0, char::len_utf8);
                fixed.push_str(&text[i..i + 1 + escaped]);
                i += 1 + escaped;
                continue;
            }
            _ => fixed.push(c),
        }
        i += c.len_utf8();
    }
    if !joined {
        return Reindent::NotPossible;
    }
    fixed.push_str(&text[i..]);
    Reindent::Fixed(fixed, Vec::new())
}

/// The text with the lines after the one holding byte `start`, up to the one holding byte
/// `end`, indented to at least `column` (blank lines are left alone).
///
/// Only for lines inside a flow collection or a quoted scalar, where leading blanks mean
/// nothing, so the value does not change. A document marker (`---`, `...`) at the start of
/// such a line ends the document for every reader: no fix then.
fn indent_lines_after(text: &str, start: usize, end: usize, column: usize) -> Reindent {
    let first_line = text[..start].matches('\n').count() + 1;
    let mut fixed = String::with_capacity(text.len() + 64);
    let mut added = Vec::new();
    fixed.push_str(&text[..start]);
    let mut lines = text[start..end].split('\n');
    fixed.push_str(lines.next().unwrap_or_default());
    for (n, line) in lines.enumerate() {
        if line.starts_with("---") || line.starts_with("...") {
            return Reindent::NotPossible;
        }
        let blanks = line.len() - line.trim_start_matches(' ').len();
        fixed.push('\n');
        let is_blank = line.trim_start_matches([' ', '\t', '\r']).is_empty();
        if !is_blank && blanks < column {
            fixed.extend(std::iter::repeat_n(' ', column - blanks));
            added.push((first_line + 1 + n, column - blanks));
        }
        fixed.push_str(line);
    }
    fixed.push_str(&text[end..]);
    Reindent::Fixed(fixed, added)
}

/// The text with the lines of the flow collection that starts at character `at` (its `[`
/// or `{`) indented past its first character.
///
/// YAML 1.2 (saphyr) wants the lines of a flow collection indented more than the enclosing
/// block; YAML 1.1 readers (PyYAML, CloudFormation) ignore indentation inside flow
/// collections, and real templates rely on it, e.g. a multi-line `Resource: [` whose closing
/// `]` sits under its key. Leading blanks inside a flow collection mean nothing, so the
/// value does not change.
fn reindent_flow(text: &str, at: usize) -> Reindent {
    let Some((start, '[' | '{')) = text.char_indices().nth(at) else {
        return Reindent::NotPossible;
    };
    let Some(end) = flow_end(text, start) else {
        return Reindent::NotPossible;
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count();
    indent_lines_after(text, start, end + 1, column + 1)
}

/// The byte of the `]` or `}` that closes the flow collection opened at byte `start`.
///
/// Exact in flow context: plain scalars there cannot hold `[]{},`, so only quoted scalars
/// and comments need skipping. A quote opens a scalar only where a token can start.
fn flow_end(text: &str, start: usize) -> Option<usize> {
    let mut depth = 0_usize;
    let mut chars = text[start..].char_indices().map(|(i, c)| (start + i, c));
    let mut previous = ' ';
    while let Some((i, c)) = chars.next() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            '#' if previous.is_whitespace() => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' | '"' if previous.is_whitespace() || "[{,:".contains(previous) => {
                let quote = c;
                loop {
                    match chars.next()? {
                        (_, '\\') if quote == '"' => {
                            chars.next()?;
                        }
                        (j, q) if q == quote => {
                            if quote == '\'' && text[j + 1..].starts_with('\'') {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        previous = if c == '#' { '\n' } else { c };
    }
    None
}

struct Loader<'input> {
    text: &'input str,
    /// Where the text ends (in characters) when `load` added its final line break.
    eof: Option<usize>,
    parser: Parser<'input, StrInput<'input>>,
    /// Built values of anchored nodes, by saphyr's anchor id.
    anchors: HashMap<usize, Anchored>,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
    /// How to change the text so that it reads, if the parser stopped on something that
    /// YAML 1.1 readers accept and saphyr does not.
    fix: Option<Fix>,
    /// Where (in characters) the sequences and mappings being built start.
    open: Vec<usize>,
    /// Where (in characters) the last event read ends.
    last_event_end: usize,
}

struct Anchored {
    value: Value,
    /// Nesting levels of sequences and mappings inside `value`.
    height: usize,
    /// Number of JSON nodes in `value`.
    nodes: usize,
}

/// What a node's tag asks for.
enum NodeTag {
    /// No tag, or the non-specific `!`: the node's ordinary meaning.
    None { non_specific: bool },
    /// A standard tag, by its suffix (`str`, `int`, `map`, ...).
    Core(String),
    /// A short-form intrinsic function, by its long-form key (`Ref`, `Fn::Sub`, ...).
    Function(String),
}

impl NodeTag {
    /// Whether the node keeps its ordinary meaning: no tag, `!`, or `!!{core}`.
    fn is_ordinary(&self, core: &str) -> bool {
        match self {
            NodeTag::None { .. } => true,
            NodeTag::Core(name) => name == core,
            NodeTag::Function(_) => false,
        }
    }
}

const GET_ATT: &str = "Fn::GetAtt";

impl<'input> Loader<'input> {
    fn new(text: &'input str, eof: Option<usize>) -> Self {
        Loader {
            text,
            eof,
            parser: Parser::new_from_str(text),
            anchors: HashMap::new(),
            alias_nodes: 0,
            fix: None,
            open: Vec::new(),
            last_event_end: 0,
        }
    }

    fn document(&mut self) -> Result<Value, TemplateError> {
        let (event, span) = self.next()?;
        if event != Event::StreamStart {
            return Err(error(span.start, "expected the start of the YAML stream"));
        }
        let (event, span) = self.next()?;
        match event {
            Event::DocumentStart(_) => {}
            Event::StreamEnd => {
                return Err(error(
                    span.start,
                    "a template must be a mapping (the text is empty)",
                ));
            }
            other => return Err(unexpected(&other, span)),
        }
        let (event, span) = self.next()?;
        let is_mapping = match &event {
            Event::MappingStart(_, tag) => classify(tag.as_deref(), span)?.is_ordinary("map"),
            _ => false,
        };
        if !is_mapping {
            return Err(error(span.start, "a template must be a mapping"));
        }
        let value = self.node(event, span, 0)?;
        let (event, span) = self.next()?;
        if event != Event::DocumentEnd {
            return Err(unexpected(&event, span));
        }
        let (event, span) = self.next()?;
        match event {
            Event::StreamEnd => Ok(value),
            Event::DocumentStart(_) => Err(error(
                span.start,
                "a template must be a single YAML document, but a second one starts here",
            )),
            other => Err(unexpected(&other, span)),
        }
    }

    /// The next event, or the parser's error with its position.
    fn next(&mut self) -> Result<(Event<'input>, Span), TemplateError> {
        match self.parser.next_event() {
            Some(Ok(next)) => {
                self.last_event_end = next.1.end.index();
                Ok(next)
            }
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(error(
                Marker::new(
                    self.text.chars().count(),
                    self.text.lines().count().max(1),
                    0,
                ),
                "unexpected end of the YAML stream",
            )),
        }
    }

    /// Builds the node that starts with `event`, nested `depth` levels deep.
    fn node(
        &mut self,
        event: Event<'input>,
        span: Span,
        depth: usize,
    ) -> Result<Value, TemplateError> {
        let (anchor, value) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = classify(tag.as_deref(), span)?;
                (anchor, self.scalar(&text, style, tag, span, depth)?)
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = classify(tag.as_deref(), span)?;
                self.open.push(span.start.index());
                let value = self.sequence(tag, span, depth)?;
                self.open.pop();
                (anchor, value)
            }
            Event::MappingStart(anchor, tag) => {
                let tag = classify(tag.as_deref(), span)?;
                self.open.push(span.start.index());
                let value = self.mapping(tag, span, depth)?;
                self.open.pop();
                (anchor, value)
            }
            Event::Alias(id) => (0, self.alias(id, span, depth)?),
            other => return Err(unexpected(&other, span)),
        };
        self.remember(anchor, &value);
        Ok(value)
    }

    /// Keeps the value of an anchored node (anchor id 0 means no anchor) for its aliases.
    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor != 0 {
            let (height, nodes) = measure(value);
            let value = value.clone();
            self.anchors.insert(
                anchor,
                Anchored {
                    value,
                    height,
                    nodes,
                },
            );
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: NodeTag,
        span: Span,
        depth: usize,
    ) -> Result<Value, TemplateError> {
        let text = match style {
            ScalarStyle::Literal | ScalarStyle::Folded if Some(span.end.index()) == self.eof => {
                // The line break that `load` added is not part of the scalar.
                text.strip_suffix('\n').unwrap_or(text)
            }
            _ => text,
        };
        match tag {
            NodeTag::None { non_specific } => Ok(if style == ScalarStyle::Plain && !non_specific {
                scalar::resolve_plain(text)
            } else {
                Value::String(text.to_owned())
            }),
            NodeTag::Core(name) => core_scalar(&name, text, span),
            NodeTag::Function(key) => {
                enter(depth, span)?;
                let inner = if key == GET_ATT {
                    get_att_from_text(text, span)?
                } else {
                    Value::String(text.to_owned())
                };
                Ok(function(key, inner))
            }
        }
    }

    fn sequence(&mut self, tag: NodeTag, span: Span, depth: usize) -> Result<Value, TemplateError> {
        match tag {
            NodeTag::None { .. } => self.items(span, depth).map(Value::Array),
            NodeTag::Core(name) if name == "seq" => self.items(span, depth).map(Value::Array),
            NodeTag::Core(name) => Err(error(
                span.start,
                format!("the tag !!{name} cannot be used on a sequence"),
            )),
            NodeTag::Function(key) if key == GET_ATT => {
                enter(depth, span)?;
                let items = self.get_att_items(span, depth + 1)?;
                Ok(function(key, items))
            }
            NodeTag::Function(key) => {
                enter(depth, span)?;
                let items = self.items(span, depth + 1)?;
                Ok(function(key, Value::Array(items)))
            }
        }
    }

    fn mapping(&mut self, tag: NodeTag, span: Span, depth: usize) -> Result<Value, TemplateError> {
        match tag {
            NodeTag::None { .. } => self.entries(span, depth).map(Value::Object),
            NodeTag::Core(name) if name == "map" => self.entries(span, depth).map(Value::Object),
            NodeTag::Core(name) => Err(error(
                span.start,
                format!("the tag !!{name} cannot be used on a mapping"),
            )),
            NodeTag::Function(key) if key == GET_ATT => Err(error(
                span.start,
                "!GetAtt needs \"Resource.Attribute\" or [Resource, Attribute], not a mapping",
            )),
            NodeTag::Function(key) => {
                enter(depth, span)?;
                let entries = self.entries(span, depth + 1)?;
                Ok(function(key, Value::Object(entries)))
            }
        }
    }

    /// The items of a sequence whose `SequenceStart` was just read.
    fn items(&mut self, span: Span, depth: usize) -> Result<Vec<Value>, TemplateError> {
        enter(depth, span)?;
        let mut items = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if event == Event::SequenceEnd {
                return Ok(items);
            }
            items.push(self.node(event, span, depth + 1)?);
        }
    }

    /// The entries of a mapping whose `MappingStart` was just read, with merge keys applied.
    fn entries(&mut self, span: Span, depth: usize) -> Result<Map<String, Value>, TemplateError> {
        enter(depth, span)?;
        let mut entries = Map::new();
        let mut merged = Vec::new();
        let mut seen_merge = false;
        loop {
            let (event, key_span) = self.next()?;
            if event == Event::MappingEnd {
                break;
            }
            let is_merge =
                matches!(&event, Event::Scalar(text, ScalarStyle::Plain, _, None) if text == "<<");
            let key = self.key(event, key_span, depth + 1)?;
            let (event, value_span) = self.next()?;
            let value = self.node(event, value_span, depth + 1)?;
            if is_merge {
                if std::mem::replace(&mut seen_merge, true) {
                    return Err(error(key_span.start, "duplicate merge key \"<<\""));
                }
                merged = merge_sources(value, value_span)?;
            } else {
                // A duplicate key keeps its first place and takes its last value, as in
                // CloudFormation and cfn-flip.
                entries.insert(key, value);
            }
        }
        // Keys written in the mapping win over merged ones; earlier sources over later ones.
        for source in merged {
            for (key, value) in source {
                if !entries.contains_key(&key) {
                    entries.insert(key, value);
                }
            }
        }
        Ok(entries)
    }

    /// A mapping key as JSON text: a scalar, written as JSON would write it.
    fn key(
        &mut self,
        event: Event<'input>,
        span: Span,
        depth: usize,
    ) -> Result<String, TemplateError> {
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
            return Err(error(span.start, "a mapping key must be a scalar"));
        }
        match self.node(event, span, depth)? {
            Value::String(s) => Ok(s),
            Value::Null => Ok("null".to_owned()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Array(_) | Value::Object(_) => Err(error(
                span.start,
                "a mapping key must be a scalar, without an intrinsic function tag",
            )),
        }
    }

    /// The `[Resource, Attribute]` list of a `!GetAtt` sequence.
    ///
    /// Scalar items keep only their text, tagged or not, as cfn-flip does (it takes each
    /// item's raw `node.value`), and the corpus requires it: `!GetAtt [!Sub
    /// "S3Bucket${Identifier}", !Ref Property]` inside `Fn::ForEach` is
    /// `["S3Bucket${Identifier}", "Property"]`. That drops the `Fn::Sub`/`Ref`, which
    /// CloudFormation would keep; it only matters inside `Fn::ForEach`. A mapping item (a
    /// long-form function) is kept as it is, where cfn-flip fails.
    fn get_att_items(&mut self, span: Span, depth: usize) -> Result<Value, TemplateError> {
        enter(depth, span)?;
        let mut items = Vec::new();
        loop {
            let (event, item_span) = self.next()?;
            let item = match event {
                Event::SequenceEnd => break,
                Event::Scalar(text, _, anchor, _) => {
                    let value = Value::String(text.into_owned());
                    self.remember(anchor, &value);
                    value
                }
                other => self.node(other, item_span, depth + 1)?,
            };
            items.push(item);
        }
        let usable = |item: &Value| match item {
            Value::String(text) => !text.is_empty(),
            Value::Object(_) => true,
            _ => false,
        };
        match items.as_slice() {
            [resource, attribute] if usable(resource) && usable(attribute) => {
                Ok(Value::Array(items))
            }
            _ => Err(error(
                span.start,
                "!GetAtt needs a list of two: [Resource, Attribute]",
            )),
        }
    }

    fn alias(&mut self, id: usize, span: Span, depth: usize) -> Result<Value, TemplateError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(error(
                span.start,
                "this alias refers to a node that contains it (recursive aliases are not supported)",
            ));
        };
        if depth + anchored.height > MAX_DEPTH {
            return Err(too_deep(span));
        }
        self.alias_nodes += anchored.nodes;
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(error(
                span.start,
                format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
            ));
        }
        Ok(anchored.value.clone())
    }

    fn scan_error(&mut self, e: &ScanError) -> TemplateError {
        let mark = *e.marker();
        let at = mark.index();
        self.fix = match e.info() {
            "tab cannot be used as indentation" => Some(Fix::TabsInQuoted(at)),
            "while parsing a quoted scalar, found invalid Unicode character escape code" => {
                Some(Fix::SurrogatePairs(at))
            }
            "comments must be separated from other tokens by whitespace" => {
                Some(Fix::SpaceBeforeComment(at))
            }
            info if info.contains("indentation") => {
                self.outermost_open_flow(at).map(Fix::Flow).or_else(|| {
                    (info == "invalid indentation in quoted scalar").then_some(Fix::Quoted(at))
                })
            }
            _ => None,
        };
        let mut message = format!("invalid YAML: {}", e.info());
        if second_tag_at(self.text, mark.index()) {
            // `!Base64 !Sub x` puts two tags on one node: YAML forbids it, CloudFormation's
            // docs explain it, and the parser's message does not say it.
            message.push_str(
                " (a node takes only one tag: write the inner function in long form, \
                 e.g. `!Base64 {\"Fn::Sub\": ...}`)",
            );
        }
        error(mark, message)
    }
}

impl Loader<'_> {
    /// Where (in characters) the outermost flow collection open at character `at` starts.
    ///
    /// That is the first sequence or mapping being built whose node starts (after its tag
    /// and anchor) with `[` or `{`, or else, as the parser reads a few tokens ahead, a `[`
    /// or `{` that starts a node between the last event read and `at`.
    fn outermost_open_flow(&self, at: usize) -> Option<usize> {
        let chars: Vec<char> = self.text.chars().collect();
        let flow_start = |mut i: usize| {
            while let Some('!' | '&') = chars.get(i) {
                while chars.get(i).is_some_and(|c| !c.is_whitespace()) {
                    i += 1;
                }
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
            }
            matches!(chars.get(i), Some('[' | '{')).then_some(i)
        };
        if let Some(start) = self.open.iter().find_map(|&start| flow_start(start)) {
            return Some(start);
        }
        // Not yet an event: look at the text read ahead, outside comments and quotes.
        let mut previous = '\n';
        let mut in_comment = false;
        let ahead = at.saturating_sub(self.last_event_end);
        for (i, &c) in chars
            .iter()
            .enumerate()
            .skip(self.last_event_end)
            .take(ahead)
        {
            if in_comment {
                in_comment = c != '\n';
            } else if c == '#' && previous.is_whitespace() {
                in_comment = true;
            } else if matches!(c, '[' | '{')
                && (previous.is_whitespace() || ":-?".contains(previous))
            {
                return Some(i);
            } else if matches!(c, '\'' | '"') {
                return None;
            }
            previous = c;
        }
        None
    }
}

/// Sorts a tag into ours, standard, or unsupported.
fn classify(tag: Option<&Tag>, span: Span) -> Result<NodeTag, TemplateError> {
    let Some(tag) = tag else {
        return Ok(NodeTag::None {
            non_specific: false,
        });
    };
    // saphyr gives `!Ref` as ("!", "Ref"), `!!str` as (CORE_PREFIX, "str"), and verbatim
    // tags (`!<...>`, and the non-specific `!`) whole in the suffix.
    let full = format!("{}{}", tag.handle, tag.suffix);
    if full == "!" {
        Ok(NodeTag::None { non_specific: true })
    } else if let Some(name) = full.strip_prefix(CORE_PREFIX) {
        Ok(NodeTag::Core(name.to_owned()))
    } else if let Some(name) = full.strip_prefix('!') {
        Ok(NodeTag::Function(match name {
            "Ref" | "Condition" => name.to_owned(),
            _ => format!("Fn::{name}"),
        }))
    } else {
        Err(error(span.start, format!("unsupported tag <{full}>")))
    }
}

/// Whether a tag starts at character `at`, right after another tag.
fn second_tag_at(text: &str, at: usize) -> bool {
    let Some((start, '!')) = text.char_indices().nth(at) else {
        return false;
    };
    let before = text[..start].trim_end();
    let word = before
        .rfind(char::is_whitespace)
        .map_or(before, |i| &before[i + 1..]);
    word.starts_with('!')
}

/// A scalar with a standard tag.
fn core_scalar(name: &str, text: &str, span: Span) -> Result<Value, TemplateError> {
    let value = match name {
        // CloudFormation has no timestamp type: the text is the value.
        "str" | "timestamp" => Some(Value::String(text.to_owned())),
        "int" => scalar::parse_int(text).map(Value::Number),
        "float" => scalar::parse_float(text)
            .or_else(|| scalar::parse_int(text))
            .and_then(|n| n.as_f64())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "bool" => scalar::parse_bool(text).map(Value::Bool),
        "null" => scalar::is_null(text).then_some(Value::Null),
        "map" | "seq" => {
            return Err(error(
                span.start,
                format!("the tag !!{name} cannot be used on a scalar"),
            ));
        }
        _ => {
            return Err(error(
                span.start,
                format!("unsupported tag !!{name} (CloudFormation does not support it)"),
            ));
        }
    };
    value.ok_or_else(|| error(span.start, format!("{text:?} is not a valid !!{name}")))
}

/// `{"Fn::GetAtt": ["A", "B.C"]}` from `"A.B.C"`: split at the first dot.
fn get_att_from_text(text: &str, span: Span) -> Result<Value, TemplateError> {
    match text.split_once('.') {
        Some((resource, attribute)) if !resource.is_empty() && !attribute.is_empty() => {
            Ok(Value::Array(vec![resource.into(), attribute.into()]))
        }
        _ => Err(error(
            span.start,
            format!("!GetAtt needs \"Resource.Attribute\", got {text:?}"),
        )),
    }
}

/// The mappings that a merge key's value names: one mapping or a list of them.
fn merge_sources(value: Value, span: Span) -> Result<Vec<Map<String, Value>>, TemplateError> {
    let not_mappings = || {
        error(
            span.start,
            "a merge key (<<) needs a mapping or a list of mappings",
        )
    };
    match value {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                _ => Err(not_mappings()),
            })
            .collect(),
        _ => Err(not_mappings()),
    }
}

fn function(key: String, inner: Value) -> Value {
    Value::Object(Map::from_iter([(key, inner)]))
}

/// Checks that a sequence or mapping may start at `depth`.
fn enter(depth: usize, span: Span) -> Result<(), TemplateError> {
    if depth >= MAX_DEPTH {
        Err(too_deep(span))
    } else {
        Ok(())
    }
}

fn too_deep(span: Span) -> TemplateError {
    error(span.start, too_deep_message())
}

/// Why a template nesting past [`MAX_DEPTH`] is not read (JSON or YAML), and what to do.
pub(super) fn too_deep_message() -> String {
    format!(
        "sequences and mappings nest deeper than {MAX_DEPTH} levels, the most a template may \
         have: flatten the template"
    )
}

/// Nesting height and node count of a value (bounded by `MAX_DEPTH`, so recursion is safe).
fn measure(value: &Value) -> (usize, usize) {
    fn collection<'a>(children: impl Iterator<Item = &'a Value>) -> (usize, usize) {
        children.fold((1, 1), |(height, nodes), child| {
            let (h, n) = measure(child);
            (height.max(h + 1), nodes + n)
        })
    }
    match value {
        Value::Array(items) => collection(items.iter()),
        Value::Object(map) => collection(map.values()),
        _ => (0, 1),
    }
}

fn unexpected(event: &Event<'_>, span: Span) -> TemplateError {
    error(span.start, format!("unexpected YAML event {event:?}"))
}

fn error(mark: Marker, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line: mark.line().max(1),
        column: mark.col() + 1,
        message: message.into(),
    }
}
