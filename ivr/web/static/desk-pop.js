// The screen pop (ivr.web.desk.pop): listens on /desk/events and shows each pop's panel, which
// the server renders (all its text is in templates/desk/pop.html). EventSource reconnects by
// itself and sends Last-Event-ID, so a pop pushed during a reconnect is not lost.
(function () {
  "use strict";
  var me = document.currentScript;
  var root = (me && me.getAttribute("data-root")) || "";
  var box = document.createElement("aside");
  box.id = "screen-pop";
  box.hidden = true;
  box.setAttribute("aria-live", "assertive");
  var main = document.querySelector("main") || document.body;
  main.insertBefore(box, main.firstChild);
  box.addEventListener("click", function (e) {
    if (e.target.classList.contains("pop-close")) { box.hidden = true; }
  });
  var source = new EventSource(root + "/desk/events");
  source.addEventListener("pop", function (e) {
    var pop = JSON.parse(e.data);
    box.innerHTML = pop.html;
    box.setAttribute("data-call", pop.external_id);
    box.setAttribute("data-event", String(pop.event_id));
    box.hidden = false;
    box.scrollIntoView({ block: "start" });
  });
  source.addEventListener("open", function () { box.setAttribute("data-listening", "yes"); });
})();
