//! The OpenAPI 3 document of the JSON API, served at
//! `/api/v1/openapi.json`. It is kept as a JSON file beside this module so
//! it reads as what clients get; a test checks that every route the router
//! serves is in it. The dashboard's page and files (`/`, `/dashboard.js`,
//! `/dashboard.css`, merged from `dashboard.rs`) are not API and not in it.

pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().expect("paths");
        let router = include_str!("serve.rs");
        for line in router.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
            let path = line.split('"').nth(1).expect("quoted path");
            assert!(paths.contains_key(path), "{path} is served but not documented");
        }
        assert_eq!(paths.len(), router.matches(".route(\"").count(), "documented paths that are not served");
    }
}
