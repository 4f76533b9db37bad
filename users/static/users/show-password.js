// "Show the password" beside each field that asks for it (data-reveal: the label's words). An
// enhancement: without JavaScript the form works the same, with no dead control on it.
document.querySelectorAll("input[type=password][data-reveal]").forEach(function (field) {
  var box = document.createElement("input");
  box.type = "checkbox";
  box.id = field.id + "-reveal";
  box.addEventListener("change", function () { field.type = box.checked ? "text" : "password"; });
  var label = document.createElement("label");
  label.htmlFor = box.id;
  label.textContent = " " + field.dataset.reveal;
  var line = document.createElement("p");
  line.append(box, label);
  field.closest("p").after(line);
});
