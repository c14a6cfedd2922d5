// The demo shop's own code: an SPA route, API calls that fail, and bugs, for the SDK to record.
const pages = {"/": ["Welcome", "Fresh coffee, delivered."], "/products": ["Products", "Beans, grinders, kettles."]};

function render(path) {
  const [title, text] = pages[path] || pages["/"];
  document.getElementById("title").textContent = title;
  document.getElementById("view").textContent = text;
  document.title = title + " - Demo Shop";
}

function navigate(event) {
  event.preventDefault();
  const path = new URL(event.currentTarget.href).pathname;
  history.pushState({}, "", path);
  render(path);
}

function placeOrder() {
  const order = null;
  return order.id;  // an uncaught TypeError
}

document.getElementById("nav-home").addEventListener("click", navigate);
document.getElementById("nav-products").addEventListener("click", navigate);
document.getElementById("rage").addEventListener("click", () => {});  // does nothing: users click it again
document.getElementById("load-fail").addEventListener("click", async () => {
  const response = await fetch("/api/recommendations");
  document.getElementById("status").textContent = "recommendations: " + response.status;
});
document.getElementById("load-closed").addEventListener("click", () => {
  fetch("__CLOSED__/reviews").catch(() => { document.getElementById("status").textContent = "offline"; });
});
document.getElementById("break").addEventListener("click", placeOrder);
document.getElementById("reject").addEventListener("click", () => { Promise.reject(new Error("payment declined")); });
document.getElementById("signin").addEventListener("click", () => {
  replayql.identify("u-42", {name: "Ada Lovelace", plan: "pro"});
});
document.getElementById("buy").addEventListener("click", () => {
  replayql.track("Checkout Completed", {revenue: 42.5, items: 2});
});
render(location.pathname);
