//! Splitting an input file into frames: NDJSON, one JSON array of frames, or one JSON object.

use serde::de::IgnoredAny;

/// One raw frame and the line it starts on (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Line number where the frame starts.
    pub line: usize,
    /// The frame's JSON text.
    pub text: &'a str,
}

/// Splits `input` into frames.
///
/// - If the whole input is one JSON array, each element is a frame (an element that is itself an array,
///   such as a `!markPrice@arr` payload, stays one frame).
/// - If the whole input is one JSON object, it is the only frame.
/// - Otherwise the input is NDJSON: every non-blank line is a frame, so one broken line spoils only itself.
pub fn split(input: &str) -> Vec<Frame<'_>> {
    let start = input.len() - input.trim_start().len();
    let first = input[start..].chars().next();
    if matches!(first, Some('[') | Some('{')) && serde_json::from_str::<IgnoredAny>(input).is_ok() {
        if first == Some('[') {
            return array_elements(input, start);
        }
        return vec![Frame {
            line: line_of(input, start),
            text: input[start..].trim_end(),
        }];
    }
    input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Frame {
            line: i + 1,
            text: l.trim(),
        })
        .collect()
}

fn line_of(input: &str, offset: usize) -> usize {
    input.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The elements of the valid JSON array starting at `open`, with their start lines.
fn array_elements(input: &str, open: usize) -> Vec<Frame<'_>> {
    let bytes = input.as_bytes();
    let mut frames = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut element_start: Option<usize> = None;
    let mut line = line_of(input, open);
    let mut element_line = line;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = element_start.take() {
                        frames.push(Frame {
                            line: element_line,
                            text: input[s..i].trim(),
                        });
                    }
                    break;
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = element_start.take() {
                    frames.push(Frame {
                        line: element_line,
                        text: input[s..i].trim(),
                    });
                }
                continue;
            }
            _ => {}
        }
        if depth >= 1 && element_start.is_none() && !b.is_ascii_whitespace() && i != open {
            element_start = Some(i);
            element_line = line;
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_are_frames_with_their_line_numbers() {
        let f = split("{\"a\":1}\n\n{\"b\":2}\nnot json\n");
        assert_eq!(
            f,
            vec![
                Frame {
                    line: 1,
                    text: "{\"a\":1}"
                },
                Frame {
                    line: 3,
                    text: "{\"b\":2}"
                },
                Frame {
                    line: 4,
                    text: "not json"
                },
            ]
        );
    }

    #[test]
    fn a_json_array_yields_its_elements_with_start_lines() {
        let input = "[\n  {\"e\":\"x\",\"s\":\"a,]}\"},\n  {\"e\":\"y\",\n   \"n\":[1,2]},\n  [{\"p\":1}]\n]\n";
        let f = split(input);
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            Frame {
                line: 2,
                text: "{\"e\":\"x\",\"s\":\"a,]}\"}"
            }
        );
        assert_eq!(f[1].line, 3);
        assert_eq!(f[1].text, "{\"e\":\"y\",\n   \"n\":[1,2]}");
        assert_eq!(
            f[2],
            Frame {
                line: 5,
                text: "[{\"p\":1}]"
            }
        );
    }

    #[test]
    fn one_pretty_object_is_one_frame() {
        let f = split("\n{\n \"e\": \"x\"\n}\n");
        assert_eq!(
            f,
            vec![Frame {
                line: 2,
                text: "{\n \"e\": \"x\"\n}"
            }]
        );
    }

    #[test]
    fn an_empty_array_has_no_frames() {
        assert!(split("[]").is_empty());
        assert!(split("  ").is_empty());
    }
}
