using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Models;
using CoeffTune.Text;

namespace CoeffTune.Checkpoints;

/// <summary>A pretrained BERT-family encoder with a fresh head, its tokenizer, and what loading it did.</summary>
public sealed record PretrainedBert(BertClassifier Model, TextTokenizer Tokenizer, LoadReport Report);

/// <summary>One entry point for real pretrained models: by asset name or by file path.</summary>
public static class PretrainedModels
{
    /// <summary>
    /// <paramref name="nameOrPath"/> is an asset name ("minilm", "arctic-xs": fetched into the cache if needed)
    /// or a path to a .onnx / .safetensors BERT checkpoint with its tokenizer files beside it (tokenizer.json, or
    /// vocab.txt with tokenizer_config.json). The model mean-pools, its
    /// classification head of <paramref name="classes"/> outputs is freshly initialised.
    /// </summary>
    public static PretrainedBert LoadBert(string nameOrPath, int classes = 2, int? heads = null, int maxLength = 128,
        AssetCache? cache = null, TextWriter? log = null)
    {
        if (classes <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be positive");
        // The tokenizer first: a missing or broken tokenizer file is reported before the model is read.
        var (modelPath, text) = Resolve(nameOrPath, maxLength, cache, log);
        var (model, report) = BertCheckpoint.Load(modelPath, classes, heads);
        if (text.VocabSize > model.Config.VocabSize)
            throw new InvalidDataException($"{text.Source}: {text.VocabSize} tokens, but {modelPath} embeds only {model.Config.VocabSize}");
        if (maxLength > model.Config.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"{modelPath} has {model.Config.MaxPositions} positions; at most that many tokens fit");
        return new PretrainedBert(model, text, report);
    }

    /// <summary>The tokenizer of a model, by asset name or by the path of a model file or of a folder with tokenizer files.</summary>
    public static TextTokenizer LoadTokenizer(string nameOrPath, int? maxLength = null, AssetCache? cache = null, TextWriter? log = null)
    {
        if (Directory.Exists(nameOrPath)) return TextTokenizer.FromFolder(nameOrPath, maxLength);
        if (TokenizerAssets.Names.FirstOrDefault(n => string.Equals(n, nameOrPath, StringComparison.OrdinalIgnoreCase)) is { } tokenizerAsset)
        {
            cache ??= AssetCache.Default;
            return TextTokenizer.FromFolder(AssetCatalog.Ensure(tokenizerAsset, cache, log), maxLength);
        }
        return Resolve(nameOrPath, maxLength, cache, log).Tokenizer;
    }

    private static (string ModelPath, TextTokenizer Tokenizer) Resolve(string nameOrPath, int? maxLength, AssetCache? cache, TextWriter? log)
    {
        var asset = AssetCatalog.All.OfType<SentenceTransformerAsset>()
            .FirstOrDefault(a => string.Equals(a.Name, nameOrPath, StringComparison.OrdinalIgnoreCase));
        if (asset is not null)
        {
            cache ??= AssetCache.Default;
            AssetCatalog.Ensure(asset.Name, cache, log);
            return (asset.ModelPath(cache), TextTokenizer.FromWordPiece(asset.VocabPath(cache), asset.Tokenizer, maxLength));
        }
        if (File.Exists(nameOrPath))
            return (nameOrPath, TextTokenizer.FromFolder(Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!, maxLength));
        var names = string.Join(", ", AssetCatalog.All.OfType<SentenceTransformerAsset>().Select(a => a.Name));
        throw new ArgumentException($"'{nameOrPath}' is neither a known model ({names}) nor an existing .onnx/.safetensors file");
    }
}
