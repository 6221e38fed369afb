using System.Text;
using System.Text.Json;

namespace CoeffTune.Data;

/// <summary>
/// Labelled texts from CSV/TSV (with a header row) or JSONL. Labels may be strings or integers; classes are
/// the distinct labels, in numeric order when all are integers and ordinal order otherwise.
/// </summary>
public static class TextFileReader
{
    public static bool IsTextFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".csv" or ".tsv" or ".jsonl";

    /// <summary>By extension: .tsv (tab), .csv (comma), .jsonl.</summary>
    public static TextDataset Read(string path, string textColumn = "text", string labelColumn = "label", string? name = null, string encoding = "utf-8") =>
        Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" => ReadJsonl(path, textColumn, labelColumn, name, encoding),
            ".tsv" => ReadDelimited(path, '\t', textColumn, labelColumn, name, encoding),
            ".csv" => ReadDelimited(path, ',', textColumn, labelColumn, name, encoding),
            var ext => throw new ArgumentException($"{Path.GetFileName(path)}: unknown text format '{ext}' (expected .csv, .tsv or .jsonl)"),
        };

    public static TextDataset ReadDelimited(string path, char delimiter, string textColumn = "text", string labelColumn = "label", string? name = null,
        string encoding = "utf-8")
    {
        using var reader = new StreamReader(DataFiles.OpenMaybeGzip(path), DataFiles.TextEncoding(encoding));
        var rows = new List<(int Line, string[] Fields)>();
        try
        {
            foreach (var row in ParseDelimited(reader, delimiter, path)) rows.Add(row);
        }
        catch (DecoderFallbackException) { throw DataFiles.BadEncoding(path); }
        if (rows.Count == 0) throw DataFiles.Bad(path, "empty file (expected a header row)");
        var header = rows[0].Fields;
        int ti = Column(header, textColumn, path), li = Column(header, labelColumn, path);
        var texts = new List<string>();
        var rawLabels = new List<string>();
        foreach (var (line, fields) in rows.Skip(1))
        {
            if (fields.Length == 1 && fields[0].Length == 0) continue;
            if (fields.Length != header.Length)
                throw DataFiles.Bad(path, $"record starting on line {line} has {fields.Length} fields, the header has {header.Length}");
            if (fields[li].Length == 0) throw DataFiles.Bad(path, $"record starting on line {line} has an empty label");
            texts.Add(fields[ti]);
            rawLabels.Add(fields[li]);
        }
        var (labels, classes) = DataFiles.Encode(rawLabels);
        return new TextDataset(texts.ToArray(), labels, classes, name ?? Path.GetFileNameWithoutExtension(path));
    }

    public static TextDataset ReadJsonl(string path, string textField = "text", string labelField = "label", string? name = null, string encoding = "utf-8")
    {
        var texts = new List<string>();
        var rawLabels = new List<string>();
        foreach (var (lineNo, root) in JsonlObjects(path, encoding))
        {
            texts.Add(StringField(path, lineNo, root, textField));
            if (!root.TryGetProperty(labelField, out var l) || l.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
                throw DataFiles.Bad(path, $"line {lineNo} has no string or number field \"{labelField}\"");
            rawLabels.Add(l.ValueKind == JsonValueKind.String ? l.GetString()! : l.GetRawText());
        }
        if (texts.Count == 0) throw DataFiles.Bad(path, "no records");
        var (labels, classes) = DataFiles.Encode(rawLabels);
        return new TextDataset(texts.ToArray(), labels, classes, name ?? Path.GetFileNameWithoutExtension(path));
    }

    /// <summary>
    /// Source/target pairs for sequence-to-sequence tasks: a .csv/.tsv with a header naming the two columns, or a .jsonl
    /// with two string fields per object; an empty field or a record of the wrong width is an error naming its line.
    /// </summary>
    public static List<(string Source, string Target)> ReadPairs(string path, string sourceColumn = "source", string targetColumn = "target", string encoding = "utf-8")
    {
        var pairs = new List<(string, string)>();
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".jsonl")
        {
            foreach (var (lineNo, root) in JsonlObjects(path, encoding))
                pairs.Add((StringField(path, lineNo, root, sourceColumn), StringField(path, lineNo, root, targetColumn)));
        }
        else if (ext is ".csv" or ".tsv")
        {
            using var reader = new StreamReader(DataFiles.OpenMaybeGzip(path), DataFiles.TextEncoding(encoding));
            List<(int Line, string[] Fields)> rows;
            try { rows = ParseDelimited(reader, ext == ".tsv" ? '\t' : ',', path).ToList(); }
            catch (DecoderFallbackException) { throw DataFiles.BadEncoding(path); }
            if (rows.Count == 0) throw DataFiles.Bad(path, "empty file (expected a header row)");
            var header = rows[0].Fields;
            int si = Column(header, sourceColumn, path), ti = Column(header, targetColumn, path);
            foreach (var (line, fields) in rows.Skip(1))
            {
                if (fields.Length == 1 && fields[0].Length == 0) continue;
                if (fields.Length != header.Length)
                    throw DataFiles.Bad(path, $"record starting on line {line} has {fields.Length} fields, the header has {header.Length}");
                if (fields[si].Length == 0 || fields[ti].Length == 0)
                    throw DataFiles.Bad(path, $"record starting on line {line} has an empty {(fields[si].Length == 0 ? sourceColumn : targetColumn)}");
                pairs.Add((fields[si], fields[ti]));
            }
        }
        else throw new ArgumentException($"{Path.GetFileName(path)}: unknown text format '{ext}' (expected .csv, .tsv or .jsonl)");
        if (pairs.Count == 0) throw DataFiles.Bad(path, "no records");
        return pairs;
    }

    /// <summary>The texts of a JSONL file, one object with a string field <paramref name="textField"/> per line (no labels).</summary>
    public static List<string> ReadJsonlTexts(string path, string textField = "text")
    {
        var texts = JsonlObjects(path).Select(r => StringField(path, r.Line, r.Root, textField)).ToList();
        if (texts.Count == 0) throw DataFiles.Bad(path, "no records");
        return texts;
    }

    /// <summary>Each non-blank line of a JSONL file (gzipped or not) as a JSON object, with its line number.</summary>
    private static IEnumerable<(int Line, JsonElement Root)> JsonlObjects(string path, string encoding = "utf-8")
    {
        using var reader = new StreamReader(DataFiles.OpenMaybeGzip(path), DataFiles.TextEncoding(encoding));
        int lineNo = 0;
        while (true)
        {
            string? line;
            try { line = reader.ReadLine(); }
            catch (DecoderFallbackException) { throw DataFiles.BadEncoding(path); }
            if (line is null) break;
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(line);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e) { throw DataFiles.Bad(path, $"line {lineNo} is not valid JSON ({e.Message})"); }
            if (root.ValueKind != JsonValueKind.Object) throw DataFiles.Bad(path, $"line {lineNo} is not a JSON object");
            yield return (lineNo, root);
        }
    }

    private static string StringField(string path, int lineNo, JsonElement root, string field) =>
        root.TryGetProperty(field, out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw DataFiles.Bad(path, $"line {lineNo} has no string field \"{field}\"");

    /// <summary>
    /// RFC 4180 records: a field in double quotes may hold the delimiter, line breaks and "" for a quote.
    /// Yields each record with the line it starts on.
    /// </summary>
    public static IEnumerable<(int Line, string[] Fields)> ParseDelimited(TextReader reader, char delimiter, string path)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1;
        bool inQuotes = false, fieldWasQuoted = false, any = false;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            any = true;
            char ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                    else inQuotes = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            if (ch == '"')
            {
                if (field.Length != 0 || fieldWasQuoted)
                    throw DataFiles.Bad(path, $"line {line}: a quote inside an unquoted field (quote the whole field and double the quote)");
                inQuotes = true;
                fieldWasQuoted = true;
            }
            else if (ch == delimiter)
            {
                fields.Add(field.ToString());
                field.Clear();
                fieldWasQuoted = false;
            }
            else if (ch == '\r' && reader.Peek() == '\n') { }
            else if (ch == '\n')
            {
                fields.Add(field.ToString());
                yield return (recordLine, fields.ToArray());
                fields.Clear();
                field.Clear();
                fieldWasQuoted = false;
                any = false;
                recordLine = ++line;
            }
            else
            {
                if (fieldWasQuoted) throw DataFiles.Bad(path, $"line {line}: text after a closing quote");
                field.Append(ch);
            }
        }
        if (inQuotes) throw DataFiles.Bad(path, $"a quoted field opened on or after line {recordLine} is never closed");
        if (any)
        {
            fields.Add(field.ToString());
            yield return (recordLine, fields.ToArray());
        }
    }

    private static int Column(string[] header, string column, string path)
    {
        int i = Array.FindIndex(header, h => string.Equals(h.Trim(), column, StringComparison.OrdinalIgnoreCase));
        if (i < 0) throw DataFiles.Bad(path, $"no column \"{column}\" in the header ({string.Join(", ", header)})");
        return i;
    }
}
