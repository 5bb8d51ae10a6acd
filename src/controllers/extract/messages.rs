//! A deserialiser's complaints in the client's terms: the field they are
//! about, and what to send instead.

use crate::error::AppError;

/// Names the field a deserialisation error is about; broken syntax is about
/// the body as a whole.
pub(super) fn parse_error(path: String, message: String, syntax: bool) -> AppError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde: "unknown field `NAME`, expected ..." (NAME may hold backticks)
        let field = rest
            .find("`, expected")
            .or_else(|| rest.find("`, there are no fields"))
            .map_or(rest, |end| &rest[..end]);
        if field.is_empty() {
            return AppError::validation("body", "has a field with an empty name");
        }
        return AppError::validation(field, "is not a known field");
    }
    // serde_json ends messages with " at line 1 column 9": not for people.
    let message = message.split(" at line ").next().unwrap_or(&message);
    if syntax {
        AppError::validation("body", format!("is not valid JSON: {message}"))
    } else if path == "." {
        AppError::validation("body", readable(message))
    } else {
        AppError::validation(path, readable(message))
    }
}

/// A deserialiser's complaint in the client's terms: what to send instead,
/// never our type names ("invalid type: string \"x\", expected struct
/// LoginAttempt" → "must be a JSON object"; "expected i64" → "must be a
/// whole number").
pub(super) fn readable(message: &str) -> String {
    // serde: "..., expected TYPE"; actix's path parser: "can not parse \"x\" to a TYPE".
    let expected = message
        .rsplit_once("expected ")
        .or_else(|| message.rsplit_once("\" to a "))
        .map(|(_, expected)| expected.trim());
    let Some(expected) = expected else {
        return message.to_string();
    };
    let wanted = match expected {
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "a JSON object",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "a string or a number" => "a string",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        e if e.starts_with('`') => return format!("must be {e}"),
        _ => "of another type",
    };
    format!("must be {wanted}")
}
