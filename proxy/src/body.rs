//! Stage 2: request bodies that are not JSON, read as PostgREST reads them
//! into the JSON a write or a call takes. Pure (serde_json only), so the
//! fuzz targets include it.

use serde_json::Value;

/// A body that cannot be read: 400 `PGRST102` with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

/// A CSV body (RFC 4180, a header line first) as a JSON array of objects
/// of strings, as PostgREST reads it: the unquoted field `NULL` is null,
/// an empty field the empty string; every line has the header's fields.
pub fn csv_rows(text: &str) -> Result<Value, BodyError> {
    let mut lines = csv_records(text)?.into_iter();
    let header: Vec<String> = lines.next().unwrap_or_default().into_iter().map(|(field, _)| field).collect();
    let rows = lines
        .map(|record| {
            if record.len() != header.len() {
                return Err(BodyError("All lines must have same number of fields".into()));
            }
            Ok(Value::Object(
                header
                    .iter()
                    .zip(record)
                    .map(|(k, (field, quoted))| (k.clone(), if !quoted && field == "NULL" { Value::Null } else { Value::String(field) }))
                    .collect(),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(rows))
}

/// The records of CSV text: each field with whether it was quoted.
fn csv_records(text: &str) -> Result<Vec<Vec<(String, bool)>>, BodyError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let (mut field, mut quoted) = (String::new(), false);
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(BodyError("Error in CSV: a quoted field is not closed".into())),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if matches!(c, ',' | '\n' | '\r') {
                break;
            }
            if quoted {
                return Err(BodyError("Error in CSV: text after a quoted field".into()));
            }
            field.push(c);
            chars.next();
        }
        record.push((field, quoted));
        match chars.next() {
            Some(',') => {}
            Some('\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                records.push(std::mem::take(&mut record));
            }
            Some(_) => records.push(std::mem::take(&mut record)),
            None => {
                // A final line break ends the last record, not an empty one.
                if !(record.len() == 1 && record[0] == (String::new(), false)) {
                    records.push(record);
                }
                return Ok(records);
            }
        }
        if chars.peek().is_none() {
            return Ok(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_bodies_read_as_postgrest_reads_them() {
        let rows = csv_rows("id,name,note\r\n1,\"Mug, blue\",NULL\n2,\"say \"\"hi\"\"\",\"NULL\"\n3,,\n").unwrap();
        assert_eq!(
            rows,
            json!([
                {"id": "1", "name": "Mug, blue", "note": null},
                {"id": "2", "name": "say \"hi\"", "note": "NULL"},
                {"id": "3", "name": "", "note": ""}
            ])
        );
        assert_eq!(csv_rows("a,b\n1\n").unwrap_err().0, "All lines must have same number of fields");
        assert!(csv_rows("a\n\"open\n").is_err());
        assert!(csv_rows("a\n\"x\"y\n").is_err());
        assert_eq!(csv_rows("a,b").unwrap(), json!([]));
    }
}
