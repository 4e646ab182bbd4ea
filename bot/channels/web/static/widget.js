/*
 * faqbot web chat widget. Embed with one tag, no build step:
 *
 *   <script src="https://faqbot.example.jp/widget/widget.js" defer
 *           data-title="カスハラ相談 よくあるご質問" data-position="right"
 *           data-api-base="https://faqbot.example.jp/"></script>
 *
 * data-title     panel title (default below)
 * data-position  "right" (default) or "left"
 * data-api-base  where /v1/... lives (default: the folder above the script's own URL)
 *
 * Safety: every piece of text from the API or from the person is put in the page as
 * text (textContent / text nodes). Links are elements built here, for http(s) and
 * mailto only. The widget lives in a shadow root so the host page's CSS cannot break it.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__faqbotWidget) {
    return;
  }
  window.__faqbotWidget = true;

  var MAX_QUERY_CHARS = 1000;
  var REQUEST_TIMEOUT_MS = 20000;
  var TEXT = {
    title: "カスハラ相談 よくあるご質問",
    launcher: "ご質問はこちら",
    launcherLabel: "ご質問はこちら（よくあるご質問のチャットを開く）",
    close: "チャットを閉じる",
    logLabel: "会話",
    greeting:
      "こんにちは。カスタマーハラスメントの防止に関するよくあるご質問にお答えします。" +
      "知りたいことを短い文章で入力し、送信してください。",
    privacy: "お名前や電話番号などの個人情報は入力しないでください。",
    inputLabel: "ご質問",
    placeholder: "例：カスハラって何ですか",
    send: "送信",
    you: "あなたのご質問：",
    bot: "回答：",
    picked: "選んだご質問：",
    thinking: "回答を探しています…",
    category: "カテゴリ：",
    faqQuestion: "よくあるご質問：",
    related: "関連するご質問",
    maybe: "次のご質問に近いでしょうか",
    routeTitle: "窓口へのご相談",
    urgentTitle: "緊急のときは",
    call: "電話する：",
    openNow: "ただいま受付時間内です。",
    closedNow: "ただいま受付時間外です。",
    hours: "受付時間：",
    phone: "電話：",
    form: "相談フォームを開く",
    feedbackQuestion: "この回答は役に立ちましたか？",
    helpful: "役に立った",
    notHelpful: "役に立たなかった",
    thanks: "ご意見ありがとうございました。",
    feedbackFailed: "ご意見を送信できませんでした。お手数ですが、もう一度お試しください。",
    empty: "ご質問を入力してください。",
    tooLong: "ご質問は" + MAX_QUERY_CHARS.toLocaleString("ja-JP") + "文字以内で入力してください。",
    invalid: "ご質問を受け付けられませんでした。内容をご確認のうえ、もう一度お試しください。",
    notReady: "ただいま準備中です。しばらくしてから、もう一度お試しください。",
    rateLimited: "ただいまご質問が集中しています。恐れ入りますが、少し時間をおいてから、もう一度お送りください。",
    failed: "申し訳ありません。ただいま回答できません。しばらくしてから、もう一度お試しください。",
    offline: "通信できませんでした。接続をご確認のうえ、もう一度お試しください。",
  };

  var data = script.dataset;
  var title = (data.title || "").trim() || TEXT.title;
  var position = data.position === "left" ? "left" : "right";
  var apiBase = resolveApiBase(data.apiBase, script.src);
  var sessionId = newSessionId();

  // ---- building blocks -------------------------------------------------------------

  /** An element with attributes and children; strings become text nodes, never HTML. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function resolveApiBase(option, scriptSrc) {
    var base;
    try {
      base = new URL(option || "../", scriptSrc);
    } catch (e) {
      base = new URL("../", scriptSrc);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") base = new URL("../", scriptSrc);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    return base;
  }

  function newSessionId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  }

  /** An http(s) URL as a string, or null for anything else (javascript:, data:, …). */
  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function externalLink(href, label) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: label });
  }

  // URLs stop at spaces, quotes, angle brackets and Japanese punctuation.
  var LINK_PATTERN =
    /https?:\/\/[^\s<>"'`、。「」『』（）【】]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

  /** Trailing punctuation that belongs to the sentence, not the link. */
  function trimLink(raw) {
    var link = raw.replace(/[.,;:!?]+$/, "");
    while (link.endsWith(")") && link.split("(").length < link.split(")").length) link = link.slice(0, -1);
    return link;
  }

  /** Append text to parent as text nodes, with URLs and e-mail addresses as links. */
  function appendLinkified(parent, text) {
    var last = 0;
    var match;
    LINK_PATTERN.lastIndex = 0;
    while ((match = LINK_PATTERN.exec(text)) !== null) {
      var link = trimLink(match[0]);
      var href = /^https?:/i.test(link) ? safeHttpUrl(link) : "mailto:" + link;
      if (!link || !href) continue;
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      parent.appendChild(href.indexOf("mailto:") === 0 ? el("a", { href: href, text: link }) : externalLink(href, link));
      last = match.index + link.length;
      LINK_PATTERN.lastIndex = last;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  // ---- the widget's DOM --------------------------------------------------------------

  var host = el("div", { className: "faqbot-widget-host" });
  host.style.display = "none"; // shown once the stylesheet is in, so it never flashes unstyled
  var root = host.attachShadow({ mode: "open" });
  var stylesheet = el("link", { rel: "stylesheet", href: new URL("widget.css", script.src).href });
  stylesheet.addEventListener("load", showHost);
  stylesheet.addEventListener("error", showHost);

  var launcher = el(
    "button",
    {
      type: "button",
      className: "launcher",
      "aria-label": TEXT.launcherLabel,
      "aria-expanded": "false",
      "aria-controls": "faqbot-panel",
    },
    [el("span", { className: "launcher-icon", "aria-hidden": "true", text: "💬" }), el("span", { text: TEXT.launcher })]
  );
  var closeButton = el("button", { type: "button", className: "close", "aria-label": TEXT.close }, [
    el("span", { "aria-hidden": "true", text: "×" }),
  ]);
  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": TEXT.logLabel });
  var input = el("textarea", {
    id: "faqbot-input",
    rows: 2,
    maxlength: MAX_QUERY_CHARS,
    placeholder: TEXT.placeholder,
    autocomplete: "off",
    enterkeyhint: "send",
  });
  var sendButton = el("button", { type: "submit", className: "send", text: TEXT.send });
  var form = el("form", { className: "composer", novalidate: true }, [
    el("label", { for: "faqbot-input", className: "visually-hidden", text: TEXT.inputLabel }),
    input,
    sendButton,
  ]);
  var panel = el(
    "section",
    { id: "faqbot-panel", className: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "faqbot-title", hidden: true },
    [
      el("header", { className: "panel-header" }, [el("h2", { id: "faqbot-title", text: title }), closeButton]),
      log,
      form,
      el("p", { className: "privacy", text: TEXT.privacy }),
    ]
  );
  var widget = el("div", { className: "faqbot", "data-position": position }, [launcher, panel]);
  root.appendChild(stylesheet);
  root.appendChild(widget);

  function showHost() {
    host.style.display = "";
  }

  // ---- opening and closing -----------------------------------------------------------

  var greeted = false;

  function isOpen() {
    return !panel.hidden;
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    fitToViewport();
    if (!greeted) {
      greeted = true;
      addBotMessage([el("p", { text: TEXT.greeting })], false);
    }
    input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (isOpen()) close();
    else open();
  });
  closeButton.addEventListener("click", close);
  widget.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.isComposing && isOpen()) {
      event.preventDefault();
      close();
    }
  });

  // With the on-screen keyboard open, size the panel to the visible part of the page.
  function fitToViewport() {
    var viewport = window.visualViewport;
    if (!viewport) return;
    widget.style.setProperty("--faqbot-viewport-height", viewport.height + "px");
    widget.style.setProperty("--faqbot-viewport-top", viewport.offsetTop + "px");
  }
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitToViewport);
    window.visualViewport.addEventListener("scroll", fitToViewport);
  }

  // ---- messages ----------------------------------------------------------------------

  function addUserMessage(prefix, text) {
    var message = el("div", { className: "message user" }, [
      el("span", { className: "visually-hidden", text: prefix }),
      el("p", { className: "text", text: text }),
    ]);
    log.appendChild(message);
    scrollTo(message);
    return message;
  }

  /** A reply from the bot; it takes focus so keyboard and screen-reader users land on it. */
  function addBotMessage(children, takeFocus) {
    var message = el("div", { className: "message bot", tabindex: "-1" }, [
      el("span", { className: "visually-hidden", text: TEXT.bot }),
    ].concat(children));
    log.appendChild(message);
    scrollTo(message);
    if (takeFocus) message.focus({ preventScroll: true });
    return message;
  }

  /** Bring a message to the top of the log; a reply together with its question when both fit. */
  function scrollTo(message) {
    var top = message;
    var before = message.previousElementSibling;
    if (before && before.classList.contains("user") && message.offsetTop + message.offsetHeight - before.offsetTop <= log.clientHeight) {
      top = before;
    }
    log.scrollTop = Math.max(0, top.offsetTop - 8);
  }

  function pending() {
    var message = el("div", { className: "message bot pending", "aria-busy": "true" }, [el("p", { text: TEXT.thinking })]);
    log.appendChild(message);
    scrollTo(message);
    return message;
  }

  function entryBlock(category, question, answer) {
    return [
      el("p", { className: "category" }, [el("span", { className: "category-badge", text: TEXT.category + category })]),
      el("p", { className: "faq-question" }, [TEXT.faqQuestion, question]),
      appendLinkified(el("p", { className: "text answer" }), answer),
    ];
  }

  function suggestionBlock(heading, suggestions, askId) {
    if (!suggestions || !suggestions.length) return null;
    var list = el("ul", { className: "suggestions" });
    suggestions.slice(0, 3).forEach(function (suggestion) {
      var button = el("button", { type: "button", className: "suggestion", text: suggestion.question });
      button.addEventListener("click", function () {
        showEntry(suggestion, askId);
      });
      list.appendChild(el("li", {}, [button]));
    });
    return el("div", { className: "suggestion-block", role: "group", "aria-label": heading }, [
      el("p", { className: "suggestion-heading", text: heading }),
      list,
    ]);
  }

  function routeCard(route) {
    var message = route.message || "";
    var card = el("div", { className: "route", role: "group", "aria-label": TEXT.routeTitle }, [el("h3", { text: TEXT.routeTitle })]);
    // open_now is null while the desk's hours are unknown: then say nothing rather than guess.
    if (route.open_now === true) card.appendChild(el("p", { className: "status open", text: TEXT.openNow }));
    if (route.open_now === false) card.appendChild(el("p", { className: "status closed", text: TEXT.closedNow }));
    card.appendChild(appendLinkified(el("p", { className: "text" }), message));
    if (route.hours && message.indexOf(route.hours) === -1) card.appendChild(el("p", {}, [TEXT.hours, route.hours]));
    if (route.phone) {
      var digits = String(route.phone).replace(/[^0-9+]/g, "");
      var phone = digits ? el("a", { href: "tel:" + digits, text: route.phone }) : document.createTextNode(route.phone);
      card.appendChild(el("p", {}, [TEXT.phone, phone]));
    }
    var formUrl = safeHttpUrl(route.form_url);
    if (formUrl) card.appendChild(el("p", {}, [el("a", { href: formUrl, target: "_blank", rel: "noopener noreferrer", className: "form-link", text: TEXT.form })]));
    return card;
  }

  function feedbackBlock(askId, faqId) {
    var status = el("p", { className: "feedback-status" });
    function voteButton(icon, label) {
      return el("button", { type: "button", className: "vote", "aria-pressed": "false" }, [
        el("span", { className: "vote-icon", "aria-hidden": "true", text: icon }),
        label,
      ]);
    }
    var up = voteButton("👍", TEXT.helpful);
    var down = voteButton("👎", TEXT.notHelpful);
    function vote(button, helpful) {
      up.disabled = down.disabled = true;
      status.textContent = "";
      request("v1/feedback", { ask_id: askId, helpful: helpful, faq_id: faqId || null })
        .then(function () {
          button.setAttribute("aria-pressed", "true");
          status.textContent = TEXT.thanks;
        })
        .catch(function () {
          up.disabled = down.disabled = false;
          status.textContent = TEXT.feedbackFailed;
        });
    }
    up.addEventListener("click", function () {
      vote(up, true);
    });
    down.addEventListener("click", function () {
      vote(down, false);
    });
    return el("div", { className: "feedback", role: "group", "aria-label": TEXT.feedbackQuestion }, [
      el("span", { className: "feedback-question", text: TEXT.feedbackQuestion }),
      up,
      down,
      status,
    ]);
  }

  /** The fallback text without the route message, which the card below shows. */
  function withoutRouteMessage(answer, route) {
    var message = route && route.message;
    if (message && answer.endsWith(message)) return answer.slice(0, -message.length).trim();
    return answer;
  }

  /** Danger now: the numbers first, as large call links, in a card that stands out. */
  function urgentCard(reply) {
    var card = el("div", { className: "urgent", role: "alert" }, [el("h3", { text: TEXT.urgentTitle })]);
    var numbers = [];
    String(reply.answer).split("\n").forEach(function (line) {
      var match = line.match(/([0-9#][0-9-]{1,12}[0-9])\s*$/);
      if (match) numbers.push({ label: line.replace(match[1], "").replace(/[・：:\s]+$/, "").replace(/^・/, ""), number: match[1] });
      else card.appendChild(el("p", { className: "text", text: line }));
    });
    if (numbers.length) {
      var list = el("ul", { className: "urgent-numbers" });
      numbers.forEach(function (n) {
        var href = "tel:" + n.number.replace(/[^0-9#]/g, "").replace("#", "%23");
        list.appendChild(el("li", {}, [el("a", { href: href, className: "call", text: n.number }), " " + n.label]));
      });
      card.insertBefore(list, card.children[2] || null);
    }
    return card;
  }

  function noticeLine(reply) {
    return reply.notice ? el("p", { className: "notice", role: "note", text: reply.notice }) : null;
  }

  function renderReply(reply) {
    var children;
    if (reply.decision === "urgent") {
      return addBotMessage([urgentCard(reply), noticeLine(reply)], true);
    }
    if (reply.decision === "smalltalk") {
      return addBotMessage([appendLinkified(el("p", { className: "text smalltalk" }), reply.answer), noticeLine(reply)], true);
    }
    if (reply.answered && reply.faq) {
      children = entryBlock(reply.faq.category, reply.faq.question, reply.answer);
      children.push(feedbackBlock(reply.ask_id, reply.faq.id));
      children.push(suggestionBlock(TEXT.related, reply.suggestions, reply.ask_id));
    } else {
      children = [appendLinkified(el("p", { className: "text" }), withoutRouteMessage(reply.answer, reply.route))];
      children.push(suggestionBlock(TEXT.maybe, reply.suggestions, reply.ask_id));
      if (reply.route) children.push(routeCard(reply.route));
      children.push(feedbackBlock(reply.ask_id, null));
    }
    children.push(noticeLine(reply));
    return addBotMessage(children, true);
  }

  // ---- talking to the service --------------------------------------------------------

  function RequestFailed(status) {
    this.status = status;
  }

  /** JSON in, JSON out, bounded in time; GET when there is no body. */
  function request(path, body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var options = { method: body ? "POST" : "GET", headers: { accept: "application/json" }, credentials: "omit" };
    if (body) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (controller) options.signal = controller.signal;
    return fetch(new URL(path, apiBase).href, options)
      .then(
        function (response) {
          return response.json().then(
            function (json) {
              if (!response.ok) throw new RequestFailed(response.status);
              return json;
            },
            function () {
              throw new RequestFailed(response.status);
            }
          );
        },
        function () {
          throw new RequestFailed(0);
        }
      )
      .finally(function () {
        if (timer) clearTimeout(timer);
      });
  }

  function failureText(error) {
    var status = error instanceof RequestFailed ? error.status : -1;
    if (status === 0) return TEXT.offline;
    if (status === 503) return TEXT.notReady;
    if (status === 429) return TEXT.rateLimited;
    if (status === 422 || status === 400) return TEXT.invalid;
    return TEXT.failed;
  }

  var busy = false;

  /** Run one exchange: show the waiting line, then the reply or a polite error. */
  function exchange(call) {
    busy = true;
    sendButton.disabled = true;
    var waiting = pending();
    return call()
      .then(function (reply) {
        waiting.remove();
        renderReply(reply);
      })
      .catch(function (error) {
        waiting.remove();
        addBotMessage([el("p", { className: "text error", text: failureText(error) })], true);
      })
      .finally(function () {
        busy = false;
        sendButton.disabled = false;
      });
  }

  function ask(query) {
    addUserMessage(TEXT.you, query);
    return exchange(function () {
      return request("v1/ask", { query: query, channel: "web", session_id: sessionId });
    });
  }

  /** Show the entry a person picked from the suggestions, with feedback tied to the ask. */
  function showEntry(suggestion, askId) {
    if (busy) return;
    addUserMessage(TEXT.picked, suggestion.question);
    // Which suggestion helped is what the desk learns from; the entry shows either way.
    request("v1/pick", { ask_id: askId, faq_id: suggestion.id, channel: "web" }).catch(function () {});
    exchange(function () {
      return request("v1/faq/" + encodeURIComponent(suggestion.id)).then(function (entry) {
        return {
          ask_id: askId,
          answered: true,
          answer: entry.answer,
          faq: { id: entry.id, question: entry.question, category: entry.category },
          suggestions: [],
          route: null,
        };
      });
    });
  }

  function submit() {
    if (busy) return;
    var query = input.value.trim();
    if (!query) {
      addBotMessage([el("p", { className: "text error", text: TEXT.empty })], false);
      input.focus();
      return;
    }
    if (query.length > MAX_QUERY_CHARS) {
      addBotMessage([el("p", { className: "text error", text: TEXT.tooLong })], false);
      return;
    }
    input.value = "";
    ask(query);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms Japanese IME input is left alone.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submit();
  });

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
