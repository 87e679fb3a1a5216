// The fill page (/forms/<id>/fill): ODK Web Forms renders the form; Send posts it to the
// server, which stores it as it stores a Collect submission. Texts come from the page, in
// the reader's language. The import map on the page resolves both imports to our own files.
import { createApp, h } from "vue";
import { OdkWebForm, POST_SUBMIT__NEW_INSTANCE, webFormsPlugin } from "@getodk/web-forms";

const root = document.getElementById("web-form");
const status = document.getElementById("fill-status");
const texts = { ...root.dataset };

function show(message, kind, link) {
  status.replaceChildren(message);
  if (link) {
    const a = document.createElement("a");
    a.href = link;
    a.textContent = texts.view;
    status.append(" ", a);
  }
  status.className = `flash ${kind}`;
  status.hidden = false;
  window.scrollTo(0, 0);
}

// Web Forms asks for jr://file/<name> (media) or jr://file-csv/<name> (lists): the same
// file of this form version that the user's Collect would download.
function fetchFormAttachment(url) {
  const name = decodeURIComponent(String(url).split("/").pop());
  return fetch(texts.filesUrl + encodeURIComponent(name), { credentials: "same-origin" });
}

// The XPath engine bundled in Web Forms 0.22.0 refuses a node as the argument of
// decimal-date-time() ("Expected a NUMBER or STRING evaluation type for date-time
// conversion"), so a form with a constraint such as `decimal-date-time(.)` does not load.
// JavaRosa and later engines read the node's text; string() hands them that text. Only such
// bare arguments are wrapped (`decimal-date-time(today())` works as it is). Remove this when
// an upgraded Web Forms loads the support visit form without it.
const NODE_ARGUMENT = /decimal-date-time\(\s*([^()]*?)\s*\)/g;

function withDateArgumentsAsText(formXml) {
  if (!formXml.includes("decimal-date-time(")) return formXml;
  const doc = new DOMParser().parseFromString(formXml, "application/xml");
  for (const element of doc.getElementsByTagName("*")) {
    for (const attribute of element.attributes) {
      if (attribute.value.includes("decimal-date-time(")) {
        attribute.value = attribute.value.replace(NODE_ARGUMENT, "decimal-date-time(string($1))");
      }
    }
  }
  return new XMLSerializer().serializeToString(doc);
}

async function readJson(response) {
  const type = response.headers.get("Content-Type") || "";
  return type.startsWith("application/json") ? response.json() : null;
}

// Resolves to what Web Forms does next: a fresh form once stored, else the same answers kept
// on screen so that Send can be pressed again.
async function send(payload) {
  const keep = { status: "failure" };
  let response;
  try {
    response = await fetch(texts.submitUrl, {
      method: "POST", body: payload.data[0], credentials: "same-origin",
      headers: { "X-CSRFToken": texts.csrfToken }, redirect: "manual",
    });
  } catch {
    show(texts.offline, "error");
    return keep;
  }
  const answer = await readJson(response).catch(() => null);
  if (response.status !== 201 || answer === null) {
    // No JSON: the login expired (a redirect) or the CSRF token is stale (a 400 page).
    if (answer) show(`${texts.failed} ${answer.message}`, "error");
    else if (response.type === "opaqueredirect" || response.status === 400) show(texts.expired, "error");
    else show(`${texts.failed} HTTP ${response.status}`, "error");
    return keep;
  }
  const missing = answer.missing_attachments || [];
  if (missing.length) {
    show(`${answer.message} ${texts.missing.replace("{names}", missing.join(", "))}`, "error",
         answer.submission_url);
  } else {
    show(`${answer.message} ${texts.sentMore}`, "ok", answer.submission_url);
  }
  return { status: "success", next: POST_SUBMIT__NEW_INSTANCE };
}

async function start() {
  let formXml;
  try {
    const response = await fetch(texts.xformUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    formXml = withDateArgumentsAsText(await response.text());
  } catch {
    show(texts.loadFailed, "error");
    return;
  }
  const app = createApp({
    render: () => h(OdkWebForm, {
      formXml,
      fetchFormAttachment,
      preloadProperties: { username: texts.username },
      onSubmit: (payload, done) => done(send(payload)),
    }),
  });
  app.use(webFormsPlugin).mount(root);
}

start();
