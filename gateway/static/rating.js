// The email rating page: confirm the vote once the page is really shown, then take a comment.
// Served from the gateway's own origin under a strict CSP: no inline code, no eval.
"use strict";
(function () {
  var page = document.getElementById("vl-page");
  if (!page || !page.dataset.view) return;
  document.documentElement.classList.add("js");
  var confirmForm = document.getElementById("vl-confirm");
  var commentForm = document.getElementById("vl-comment");
  var retry = document.getElementById("vl-retry");
  var attempts = 0;

  var status = document.getElementById("vl-status");

  // The live region's text changes, so a screen reader announces each state.
  function show(state) {
    page.dataset.state = state;
    status.textContent = status.dataset[state];
  }

  function post(body) {
    return fetch(location.pathname + location.search, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (answer) {
      if (!answer.ok) throw new Error("status " + answer.status);
      return answer.json();
    });
  }

  function confirmVote() {
    attempts += 1;
    show("pending");
    retry.hidden = true;
    post({ view: page.dataset.view }).then(
      function () {
        show("recorded");
        confirmForm.hidden = true;
        commentForm.hidden = false;
      },
      function () {
        if (attempts < 3) {
          setTimeout(confirmVote, 1000 * attempts);
        } else {
          show("failed");
          retry.hidden = false;
        }
      }
    );
  }

  confirmForm.addEventListener("submit", function (event) {
    event.preventDefault();
    attempts = 0;
    confirmVote();
  });

  commentForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = document.getElementById("vl-text");
    if (!text.value.trim()) return;
    var button = commentForm.querySelector("button");
    button.disabled = true;
    post({ view: page.dataset.view, comment: text.value }).then(
      function () {
        show("commented");
        commentForm.hidden = true;
      },
      function () {
        show("failed");
        button.disabled = false;
      }
    );
  });

  // Only a page a person can see confirms: a prefetch or a hidden tab waits until shown.
  function whenShown() {
    if (document.visibilityState !== "visible") return;
    document.removeEventListener("visibilitychange", whenShown);
    requestAnimationFrame(function () {
      if (page.dataset.state === "pending") confirmVote();
    });
  }
  if (page.dataset.state === "pending") {
    document.addEventListener("visibilitychange", whenShown);
    whenShown();
  }
})();
