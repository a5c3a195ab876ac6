//! The web console: one page and its assets (HTML, CSS, JavaScript modules, a logo), all
//! embedded in the binary at compile time, served with their content types, revalidation
//! headers and a strict Content-Security-Policy. The console talks only to the REST API
//! under `/api/v1`; this module serves files and knows nothing of sessions.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// A strong validator computed at compile time, so that a browser revalidates
    /// cheaply and never runs a stale script after an upgrade of the binary.
    etag: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("console/", $name)),
            etag: {
                const HASH: u64 = fnv1a(include_bytes!(concat!("console/", $name)));
                const TEXT: [u8; 18] = etag_text(HASH);
                match std::str::from_utf8(&TEXT) {
                    Ok(text) => text,
                    Err(_) => panic!("an etag is ASCII"),
                }
            },
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Everything under `/assets/`. The page loads `app.js` as a module, which imports the
/// others by relative name, so the directory stays flat.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("logo.svg", "image/svg+xml"),
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("dom.js", JAVASCRIPT),
    asset!("format.js", JAVASCRIPT),
    asset!("chart.js", JAVASCRIPT),
    asset!("overview.js", JAVASCRIPT),
    asset!("schemas.js", JAVASCRIPT),
    asset!("users.js", JAVASCRIPT),
    asset!("openstack.js", JAVASCRIPT),
    asset!("tokens.js", JAVASCRIPT),
];

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// No inline script or style anywhere: scripts, styles, images and API calls come from
/// this origin only, and no other site may frame the console.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The console's routes: `/` and `/assets/{name}`. State-less; the API router is merged
/// beside it.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index(request_headers: HeaderMap) -> Response {
    serve(&INDEX, &request_headers)
}

async fn asset(
    axum::extract::Path(name): axum::extract::Path<String>,
    request_headers: HeaderMap,
) -> Response {
    match find_asset(&name) {
        Some(asset) => serve(asset, &request_headers),
        None => {
            let mut response = (
                StatusCode::NOT_FOUND,
                format!("no console asset named {name:?}"),
            )
                .into_response();
            add_security_headers(response.headers_mut());
            response
        }
    }
}

fn find_asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn serve(asset: &'static Asset, request_headers: &HeaderMap) -> Response {
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == asset.etag || tag.trim() == "*")
        });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = asset.body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    // Revalidate on every load (a 304 costs one round trip): the file names carry no
    // version, and a console must never mix the scripts of two releases.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    add_security_headers(headers);
    response
}

fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// FNV-1a, 64 bits: small enough to run in a `const` over every embedded file.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    hash
}

/// `"` + 16 hex digits + `"`: an HTTP entity tag.
const fn etag_text(hash: u64) -> [u8; 18] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'"'; 18];
    let mut index = 0;
    while index < 16 {
        text[1 + index] = DIGITS[((hash >> (60 - 4 * index)) & 0xf) as usize];
        index += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        routes()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[tokio::test]
    async fn each_path_is_served_with_its_content_type_and_security_headers() {
        let cases = [
            ("/", "text/html; charset=utf-8"),
            ("/index.html", "text/html; charset=utf-8"),
            ("/assets/app.js", JAVASCRIPT),
            ("/assets/overview.js", JAVASCRIPT),
            ("/assets/app.css", "text/css; charset=utf-8"),
            ("/assets/logo.svg", "image/svg+xml"),
        ];
        for (path, content_type) in cases {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                content_type,
                "{path}"
            );
            assert_eq!(
                header_of(&response, header::CACHE_CONTROL),
                "no-cache",
                "{path}"
            );
            assert_eq!(
                header_of(&response, header::X_FRAME_OPTIONS),
                "DENY",
                "{path}"
            );
            assert_eq!(
                header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff"
            );
            assert_eq!(header_of(&response, header::REFERRER_POLICY), "same-origin");
            let policy = header_of(&response, header::CONTENT_SECURITY_POLICY);
            assert!(policy.starts_with("default-src 'self';"), "{policy}");
            assert!(!policy.contains("unsafe-inline"), "{policy}");
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_404_and_never_fall_through_to_the_file_system() {
        for path in [
            "/assets/nope.js",
            "/assets/..%2Fconsole.rs",
            "/assets/%2E%2E%2Flib.rs",
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header_of(&response, header::X_FRAME_OPTIONS), "DENY");
        }
    }

    #[tokio::test]
    async fn a_matching_etag_gets_304_and_a_stale_one_gets_the_file() {
        let first = get("/assets/app.js", None).await;
        let etag = header_of(&first, header::ETAG).to_owned();
        assert_eq!(etag.len(), 18, "{etag}");
        let again = get("/assets/app.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let stale = get("/assets/app.js", Some("\"0000000000000000\"")).await;
        assert_eq!(stale.status(), StatusCode::OK);
    }

    #[test]
    fn every_embedded_file_is_referenced_and_every_reference_is_embedded() {
        // The page loads app.css, logo.svg and app.js; the modules import each other by
        // relative name. A module that nobody imports, or an import of a file that is
        // not embedded, is a mistake this catches without a browser.
        let mut texts = vec![std::str::from_utf8(INDEX.body).unwrap()];
        for asset in ASSETS {
            if asset.name.ends_with(".js") {
                texts.push(std::str::from_utf8(asset.body).unwrap());
            }
        }
        for asset in ASSETS {
            let referenced = texts.iter().any(|text| {
                text.contains(&format!("/assets/{}", asset.name))
                    || text.contains(&format!("'./{}'", asset.name))
            });
            assert!(referenced, "{} is embedded but never loaded", asset.name);
        }
        for text in &texts {
            for (position, _) in text.match_indices("from './") {
                let rest = &text[position + "from './".len()..];
                let name = &rest[..rest.find('\'').unwrap()];
                assert!(
                    find_asset(name).is_some(),
                    "import of {name} is not embedded"
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        for (position, _) in page.match_indices("<script") {
            let tag = &page[position..position + page[position..].find('>').unwrap()];
            assert!(tag.contains("src="), "inline script: {tag}");
        }
        assert!(!page.contains("<style"), "inline style element");
        assert!(!page.contains("style="), "inline style attribute");
        assert!(!page.contains("onclick"), "inline event handler");
    }

    #[test]
    fn etags_are_quoted_hex_and_differ_between_files() {
        assert_eq!(&etag_text(0x0123_4567_89ab_cdef), b"\"0123456789abcdef\"");
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(
            find_asset("app.js").unwrap().etag,
            find_asset("api.js").unwrap().etag
        );
    }
}
