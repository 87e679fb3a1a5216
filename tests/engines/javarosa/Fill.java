// Fills one XForm with JavaRosa, the form engine inside ODK Collect (the copy bundled in
// ODK_Validate.jar), stepping through it with a FormEntryController as Collect's form entry
// screen does, and writes the submission XML Collect would send.
//
//   javac -cp ODK_Validate.jar -d OUT Fill.java
//   java -cp ODK_Validate.jar:OUT Fill job.properties
//
// job.properties (UTF-8):
//   form=PATH             the XForm as downloaded from the server
//   media=DIR             the form attachments from the manifest (households.csv, ...)
//   out=PATH              where the submission XML goes
//   seed=N                the same seed gives the same answers
//   edit=PATH             optional: a sent submission to edit (new instanceID, deprecatedID)
//   preload.NAME=VALUE    what Collect preloads (deviceid, username, ...)
//   answer.KEY=V1|V2      answers to try first; KEY is a path below the root with repeat
//                         indices (g_members/members[2]/m_name), without them, or a field name;
//                         select_multiple answers are space-separated values
//   repeat.KEY=N          how many instances of an uncontrolled repeat to fill
//
// Standard output, one tab-separated line each: "answered REF VALUE", "unanswered REF REASON",
// "attachment NAME" (a file name the instance references). The exit code is 0 only when every
// relevant question was answered and JavaRosa's own finalization check passed.

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.UUID;

import org.javarosa.core.model.Constants;
import org.javarosa.core.model.FormDef;
import org.javarosa.core.model.FormIndex;
import org.javarosa.core.model.SelectChoice;
import org.javarosa.core.model.ValidateOutcome;
import org.javarosa.core.model.data.AnswerDataFactory;
import org.javarosa.core.model.data.DateData;
import org.javarosa.core.model.data.IAnswerData;
import org.javarosa.core.model.data.SelectMultiData;
import org.javarosa.core.model.data.SelectOneData;
import org.javarosa.core.model.data.StringData;
import org.javarosa.core.model.data.UncastData;
import org.javarosa.core.model.data.helper.Selection;
import org.javarosa.core.model.instance.FormInstance;
import org.javarosa.core.model.instance.InstanceInitializationFactory;
import org.javarosa.core.model.instance.TreeElement;
import org.javarosa.core.model.instance.TreeReference;
import org.javarosa.core.reference.InvalidReferenceException;
import org.javarosa.core.reference.Reference;
import org.javarosa.core.reference.ReferenceFactory;
import org.javarosa.core.reference.ReferenceManager;
import org.javarosa.core.services.IPropertyManager;
import org.javarosa.core.services.PropertyManager;
import org.javarosa.core.services.properties.IPropertyRules;
import org.javarosa.form.api.FormEntryController;
import org.javarosa.form.api.FormEntryModel;
import org.javarosa.form.api.FormEntryPrompt;
import org.javarosa.model.xform.XFormSerializingVisitor;
import org.javarosa.model.xform.XFormsModule;
import org.javarosa.xform.parse.XFormParser;
import org.javarosa.xform.util.XFormUtils;

public class Fill {
    private static final String[] SURNAMES = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"};
    private static final String[] MIDDLE = {"Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu", "Quang"};
    private static final String[] GIVEN = {"An", "Bình", "Chi", "Dũng", "Hà", "Hương", "Khánh", "Lan"};

    private final Properties job;
    private final Random rng;
    private final Map<String, String> answered = new LinkedHashMap<>();
    private final Map<String, String> unanswered = new LinkedHashMap<>();
    private final List<String> attachments = new ArrayList<>();
    private FormDef form;
    private FormEntryController controller;

    Fill(Properties job) {
        this.job = job;
        this.rng = new Random(Long.parseLong(job.getProperty("seed", "1")));
    }

    public static void main(String[] args) throws Exception {
        Properties job = new Properties();
        try (InputStreamReader in =
                 new InputStreamReader(new FileInputStream(args[0]), StandardCharsets.UTF_8)) {
            job.load(in);
        }
        System.exit(new Fill(job).run());
    }

    int run() throws Exception {
        // As Collect does at start-up (jr:choice-name needs the XForms factory).
        new XFormsModule().registerModule();
        installMedia(Paths.get(job.getProperty("media", ".")));
        installProperties();
        form = XFormUtils.getFormFromFormXml(job.getProperty("form"), null);
        String edit = job.getProperty("edit");
        if (edit != null) {
            importInstance(Files.readAllBytes(Paths.get(edit)));
            form.initialize(false, new InstanceInitializationFactory());
        } else {
            form.initialize(true, new InstanceInitializationFactory());
        }
        controller = new FormEntryController(new FormEntryModel(form));
        walk();
        // Collect's "finalize": every relevant question rechecked, then end-of-form processing.
        ValidateOutcome outcome = form.validate();
        if (outcome != null) {
            unanswered.putIfAbsent(reference(outcome.failedPrompt.getReference()),
                outcome.outcome == FormEntryController.ANSWER_REQUIRED_BUT_EMPTY
                    ? "required but empty at finalization" : "constraint violated at finalization");
        }
        controller.finalizeFormEntry();
        if (edit != null) markAsEdit();
        byte[] xml = new XFormSerializingVisitor().serializeInstance(form.getInstance());
        Files.write(Paths.get(job.getProperty("out")), xml);
        StringBuilder report = new StringBuilder();
        answered.forEach((ref, value) -> report.append("answered\t").append(ref).append('\t')
            .append(value.replace('\t', ' ').replace('\n', ' ')).append('\n'));
        unanswered.forEach((ref, why) -> report.append("unanswered\t").append(ref).append('\t')
            .append(why.replace('\t', ' ').replace('\n', ' ')).append('\n'));
        for (String name : attachments) report.append("attachment\t").append(name).append('\n');
        System.out.write(report.toString().getBytes(StandardCharsets.UTF_8));
        System.out.flush();
        return unanswered.isEmpty() ? 0 : 1;
    }

    // jr://file-csv/NAME and jr://file/NAME are the form's attachments, read from one folder.
    private static void installMedia(Path dir) {
        ReferenceManager.instance().addReferenceFactory(new ReferenceFactory() {
            public boolean derives(String uri) {
                return uri.startsWith("jr://file-csv/") || uri.startsWith("jr://file/");
            }

            public Reference derive(String uri) {
                return new FileReference(uri, dir.resolve(uri.substring(uri.lastIndexOf('/') + 1)));
            }

            public Reference derive(String uri, String context) throws InvalidReferenceException {
                return derive(uri);
            }
        });
    }

    private void installProperties() {
        Map<String, String> values = new HashMap<>();
        for (String key : job.stringPropertyNames()) {
            if (key.startsWith("preload.")) values.put(key.substring(8).toLowerCase(), job.getProperty(key));
        }
        PropertyManager.setPropertyManager(new IPropertyManager() {
            public List<String> getProperty(String name) {
                String value = getSingularProperty(name);
                return value == null ? null : Collections.singletonList(value);
            }
            public void setProperty(String name, String value) { values.put(name.toLowerCase(), value); }
            public void setProperty(String name, List<String> value) { setProperty(name, value.get(0)); }
            public String getSingularProperty(String name) { return values.get(name.toLowerCase()); }
            public void addRules(IPropertyRules rules) { }
            public List<IPropertyRules> getRules() { return new ArrayList<>(); }
        });
    }

    // As Collect opens a saved instance: the sent answers poured into the form's own model.
    private void importInstance(byte[] xml) {
        TreeElement saved = XFormParser.restoreDataModel(xml, null).getRoot();
        TreeElement template = form.getMainInstance().getRoot().deepCopy(true);
        template.populate(saved, form);
        form.getMainInstance().setName(null);
        form.getMainInstance().setRoot(template);
    }

    // An edit of a sent form is a new submission that names the one it replaces.
    private void markAsEdit() {
        TreeElement meta = form.getMainInstance().getRoot().getChild("meta", 0);
        TreeElement instanceId = meta.getChild("instanceID", 0);
        String previous = instanceId.getValue().uncast().getString();
        TreeElement deprecated = meta.getChild("deprecatedID", 0);
        if (deprecated == null) {
            deprecated = new TreeElement("deprecatedID", 0);
            deprecated.setNamespace(instanceId.getNamespace());
            meta.addChild(deprecated);
        }
        deprecated.setAnswer(new StringData(previous));
        instanceId.setAnswer(new StringData("uuid:" + UUID.randomUUID()));
    }

    private void walk() {
        controller.jumpToIndex(FormIndex.createBeginningOfFormIndex());
        for (int steps = 0; steps < 100000; steps++) {
            int event = controller.stepToNextEvent();
            if (event == FormEntryController.EVENT_END_OF_FORM) return;
            if (event == FormEntryController.EVENT_PROMPT_NEW_REPEAT) {
                // "Add another?": yes while fewer than asked, as a volunteer would answer
                String wanted = given("repeat.", controller.getModel().getFormIndex().getReference());
                int have = controller.getModel().getFormIndex().getTerminal().getInstanceIndex();
                if (wanted != null && have < Integer.parseInt(wanted.split("\\|")[0])) {
                    controller.newRepeat();
                }
            } else if (event == FormEntryController.EVENT_QUESTION) {
                FormEntryPrompt prompt = controller.getModel().getQuestionPrompt();
                if (!prompt.isReadOnly()) answer(prompt);
            }
        }
        throw new IllegalStateException("the form never ended");
    }

    private void answer(FormEntryPrompt prompt) {
        FormIndex index = prompt.getIndex();
        String ref = reference(index.getReference());
        String given = given("answer.", index.getReference());
        IAnswerData current = prompt.getAnswerValue();
        // A default, a prefill or the sent answer when editing is kept, as "next" keeps it.
        if (given == null && current != null && !current.uncast().getString().isEmpty()) {
            answered.put(ref, current.uncast().getString());
            return;
        }
        List<String> candidates = new ArrayList<>();
        if (given != null) Collections.addAll(candidates, given.split("\\|"));
        else candidates.addAll(generated(prompt));
        String lastProblem = candidates.isEmpty() ? "no choice offered" : "no candidate";
        for (String candidate : candidates) {
            IAnswerData data = toAnswer(prompt, candidate);
            if (data == null) {
                lastProblem = "not a choice: " + candidate;
                continue;
            }
            int result = controller.answerQuestion(index, data, true);
            if (result == FormEntryController.ANSWER_OK) {
                answered.put(ref, data.uncast().getString());
                if (prompt.getDataType() == Constants.DATATYPE_BINARY) attachments.add(candidate);
                return;
            }
            lastProblem = result == FormEntryController.ANSWER_CONSTRAINT_VIOLATED
                ? "constraint: " + prompt.getConstraintText() : "required";
        }
        String prefix = given != null ? "the given answer(s) " + given + " were refused: " : "";
        unanswered.put(ref, prefix + lastProblem);
    }

    private IAnswerData toAnswer(FormEntryPrompt prompt, String value) {
        int control = prompt.getControlType();
        if (control == Constants.CONTROL_SELECT_ONE || control == Constants.CONTROL_SELECT_MULTI) {
            List<Selection> chosen = new ArrayList<>();
            for (String v : value.trim().split("\\s+")) {
                SelectChoice choice = findChoice(prompt, v);
                if (choice == null) return null;
                chosen.add(choice.selection());
            }
            return control == Constants.CONTROL_SELECT_ONE
                ? new SelectOneData(chosen.get(0)) : new SelectMultiData(chosen);
        }
        if (prompt.getDataType() == Constants.DATATYPE_DATE) {
            LocalDate day = LocalDate.parse(value);
            return new DateData(Date.from(day.atStartOfDay(ZoneId.systemDefault()).toInstant()));
        }
        if (prompt.getDataType() == Constants.DATATYPE_BINARY) return new StringData(value);
        return AnswerDataFactory.templateByDataType(prompt.getDataType()).cast(new UncastData(value));
    }

    private static SelectChoice findChoice(FormEntryPrompt prompt, String value) {
        for (SelectChoice choice : prompt.getSelectChoices()) {
            if (choice.getValue().equals(value)) return choice;
        }
        return null;
    }

    private List<String> generated(FormEntryPrompt prompt) {
        List<String> out = new ArrayList<>();
        int control = prompt.getControlType();
        if (control == Constants.CONTROL_SELECT_ONE || control == Constants.CONTROL_SELECT_MULTI) {
            List<String> values = new ArrayList<>();
            for (SelectChoice choice : prompt.getSelectChoices()) values.add(choice.getValue());
            Collections.shuffle(values, rng);
            if (control == Constants.CONTROL_SELECT_MULTI) {
                for (int i = 0; i < 4 && !values.isEmpty(); i++) {
                    List<String> copy = new ArrayList<>(values);
                    Collections.shuffle(copy, rng);
                    out.add(String.join(" ", copy.subList(0, 1 + rng.nextInt(Math.min(3, copy.size())))));
                }
            }
            out.addAll(values);
            return out;
        }
        switch (prompt.getDataType()) {
            case Constants.DATATYPE_INTEGER:
            case Constants.DATATYPE_LONG:
                Collections.addAll(out, "" + (1 + rng.nextInt(4)), "" + (1950 + rng.nextInt(55)),
                    "" + (5 + rng.nextInt(56)), "1", "2", "10", "30", "100", "0");
                return out;
            case Constants.DATATYPE_DECIMAL:
                Collections.addAll(out, "" + (1 + rng.nextInt(400)) / 10.0, "1.5", "0");
                return out;
            case Constants.DATATYPE_DATE:
                LocalDate today = LocalDate.now();
                Collections.addAll(out, today.toString(), today.minusDays(1 + rng.nextInt(5)).toString(),
                    today.plusDays(3 + rng.nextInt(18)).toString(), today.plusDays(45).toString());
                return out;
            case Constants.DATATYPE_GEOPOINT:
                out.add(String.format(java.util.Locale.ROOT, "%.6f %.6f %d.0 %d.0",
                    21.30 + rng.nextInt(1000) / 10000.0, 105.59 + rng.nextInt(1000) / 10000.0,
                    10 + rng.nextInt(31), 3 + rng.nextInt(7)));
                return out;
            case Constants.DATATYPE_BINARY:
                out.add(System.currentTimeMillis() + ".jpg");  // Collect names a photo by its time
                return out;
            default:
                out.add(pick(SURNAMES) + " " + pick(MIDDLE) + " " + pick(GIVEN));
                out.add((1 + rng.nextInt(200)) + (rng.nextBoolean() ? "" : "A"));
                out.add(String.format("09%08d", rng.nextInt(100000000)));
                out.add("Ghi chú " + (1 + rng.nextInt(99)));
                return out;
        }
    }

    private String pick(String[] list) {
        return list[rng.nextInt(list.length)];
    }

    private String given(String prefix, TreeReference ref) {
        String path = reference(ref);
        String bare = path.replaceAll("\\[\\d+\\]", "");
        String name = bare.substring(bare.lastIndexOf('/') + 1);
        for (String key : new String[] {path, bare, name}) {
            String value = job.getProperty(prefix + key);
            if (value != null) return value;
        }
        return null;
    }

    // "g_members/members[2]/m_name": the path below the root, 1-based indices on repeats only.
    private String reference(TreeReference ref) {
        FormInstance main = form.getMainInstance();
        StringBuilder out = new StringBuilder();
        for (int level = 1; level < ref.size(); level++) {
            if (out.length() > 0) out.append('/');
            out.append(ref.getName(level));
            TreeElement element = main.resolveReference(ref.getSubReference(level));
            if (element != null && element.isRepeatable()) {
                out.append('[').append(ref.getMultiplicity(level) + 1).append(']');
            }
        }
        return out.toString();
    }

    private static final class FileReference implements Reference {
        private final String uri;
        private final Path path;

        FileReference(String uri, Path path) {
            this.uri = uri;
            this.path = path;
        }

        public boolean doesBinaryExist() { return Files.exists(path); }
        public InputStream getStream() throws IOException {
            if (!Files.exists(path)) {
                throw new IOException("the form needs " + path.getFileName() + ", which its manifest does not list");
            }
            return Files.newInputStream(path);
        }
        public String getURI() { return uri; }
        public String getLocalURI() { return path.toString(); }
        public boolean isReadOnly() { return true; }
        public OutputStream getOutputStream() throws IOException { throw new IOException("read-only"); }
        public void remove() throws IOException { throw new IOException("read-only"); }
        public Reference[] probeAlternativeReferences() { return new Reference[0]; }
    }
}
