using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Text;

namespace CoeffTune.Export;

/// <summary>
/// The tokenizer files shipped beside an exported text model, in Hugging Face's layout: <c>tokenizer.json</c>
/// (the definition the library runs, with truncation to the exported max tokens switched on, so that Hugging
/// Face's tokenizers library, e.g. Tokenizers.DotNet's <c>Encode</c>, cuts long texts as the library does:
/// leading tokens kept, special tokens kept) and <c>tokenizer_config.json</c> (<c>model_max_length</c>, the pad token).
/// </summary>
public static class ExportedTokenizer
{
    /// <summary>Writes both files into <paramref name="folder"/>, each whole or not at all; returns their paths.</summary>
    public static IReadOnlyList<string> Write(TextTokenizer tokenizer, string folder)
    {
        var definition = (JsonObject)tokenizer.Definition.DeepClone();
        definition["truncation"] = new JsonObject
        {
            ["direction"] = "Right", ["max_length"] = tokenizer.MaxLength, ["strategy"] = "LongestFirst", ["stride"] = 0,
        };
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["model_max_length"] = tokenizer.MaxLength,
            ["pad_token"] = tokenizer.Token(tokenizer.PadId),
            ["model_input_names"] = new JsonArray(OnnxExporter.InputIds, OnnxExporter.TokenTypeIds, OnnxExporter.AttentionMask),
        };
        var paths = new[] { Path.Combine(folder, TokenizerFiles.TokenizerJson), Path.Combine(folder, TokenizerFiles.ConfigJson) };
        IO.AtomicFile.WriteAllText(paths[0], definition.ToJsonString());
        IO.AtomicFile.WriteAllText(paths[1], config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return paths;
    }
}
