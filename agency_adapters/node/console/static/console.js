// Progressive enhancement only: every page works without JavaScript.
import { initAll, isSupported } from "/static/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled");
if (isSupported()) {
  document.body.classList.add("govuk-frontend-supported");
  initAll();
}
