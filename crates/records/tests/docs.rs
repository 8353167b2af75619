//! Keeps the examples in docs/records.md true: the JSON record example is
//! exactly what this crate writes for that record, and the job log example
//! is that record's log line.

use sprocket_records::text::job_log_line;
use sprocket_records::Record;

fn json_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/records.md");
    let text = std::fs::read_to_string(path).expect("docs/records.md is readable");
    text.split("```json\n").skip(1).filter_map(|rest| rest.split("\n```").next()).map(str::to_owned).collect()
}

#[test]
fn the_documented_examples_are_what_the_code_writes() {
    let blocks = json_blocks();
    assert_eq!(blocks.len(), 2, "docs/records.md has a record example and a job log example");
    let documented: serde_json::Value = serde_json::from_str(&blocks[0]).unwrap();
    let record: Record = serde_json::from_value(documented.clone()).unwrap();
    assert_eq!(serde_json::to_value(&record).unwrap(), documented);

    let documented_line: serde_json::Value = serde_json::from_str(&blocks[1]).unwrap();
    let line: serde_json::Value = serde_json::from_str(&job_log_line(&record, false)).unwrap();
    assert_eq!(line, documented_line);
}
