// Run history is off (app.py), but a browser may still hold runs an earlier version saved, with
// the questions and answers in them: remove every such key when the page loads.
for (const key of Object.keys(localStorage)) {
  if (key.startsWith("gradio:run-history:")) localStorage.removeItem(key);
}
