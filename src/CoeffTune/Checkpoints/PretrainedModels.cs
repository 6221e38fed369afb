using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Embeddings;
using CoeffTune.Models;
using CoeffTune.Text;

namespace CoeffTune.Checkpoints;

/// <summary>
/// A pretrained BERT-family encoder with a fresh head, its tokenizer, the sentence-transformers configuration
/// it pools by (the model's own, or the caller's pooling override), and what loading it did.
/// </summary>
public sealed record PretrainedBert(BertClassifier Model, TextTokenizer Tokenizer, LoadReport Report, SentenceTransformerConfig Sentence);

/// <summary>One entry point for real pretrained models: by asset name or by file path.</summary>
public static class PretrainedModels
{
    /// <summary>
    /// <paramref name="nameOrPath"/> is an asset name ("minilm", "arctic-xs": fetched into the cache if needed)
    /// or a path to a .onnx / .safetensors BERT checkpoint with its tokenizer files beside it (tokenizer.json, or
    /// vocab.txt with tokenizer_config.json), and, for a sentence-transformers folder, its modules.json and pooling
    /// config. The model pools as its sentence-transformers configuration says (a folder without one: mean
    /// pooling), unless <paramref name="pooling"/> overrides it. Texts are cut at <paramref name="maxLength"/>,
    /// else the model's max_seq_length, else the tokenizer's model_max_length. The classification head of
    /// <paramref name="classes"/> outputs is freshly initialised.
    /// </summary>
    public static PretrainedBert LoadBert(string nameOrPath, int classes = 2, int? heads = null, int? maxLength = null,
        AssetCache? cache = null, TextWriter? log = null, Pooling? pooling = null)
    {
        if (classes <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be positive");
        var (modelPath, sentence, tokenizerFor) = Resolve(nameOrPath, cache, log);
        if (pooling is Pooling p) sentence = sentence with { Pooling = p };
        // The tokenizer first: a missing or broken tokenizer file is reported before the model is read.
        var text = tokenizerFor(maxLength ?? sentence.MaxSeqLength);
        var (model, report) = BertCheckpoint.Load(modelPath, classes, heads, pooling: sentence.Pooling);
        if (text.VocabSize > model.Config.VocabSize)
            throw new InvalidDataException($"{text.Source}: {text.VocabSize} tokens, but {modelPath} embeds only {model.Config.VocabSize}");
        if (text.MaxLength > model.Config.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(maxLength), text.MaxLength, $"{modelPath} has {model.Config.MaxPositions} positions; at most that many tokens fit");
        return new PretrainedBert(model, text, report, sentence);
    }

    /// <summary>The tokenizer of a model, by asset name (a model or a tokenizer such as "gpt2") or by the path of a model file or of a folder with tokenizer files.</summary>
    public static TextTokenizer LoadTokenizer(string nameOrPath, int? maxLength = null, AssetCache? cache = null, TextWriter? log = null)
    {
        if (Directory.Exists(nameOrPath)) return TextTokenizer.FromFolder(nameOrPath, maxLength);
        if (TokenizerAssets.Names.FirstOrDefault(n => string.Equals(n, nameOrPath, StringComparison.OrdinalIgnoreCase)) is { } tokenizerAsset)
        {
            cache ??= AssetCache.Default;
            return TextTokenizer.FromFolder(AssetCatalog.Ensure(tokenizerAsset, cache, log), maxLength);
        }
        return Resolve(nameOrPath, cache, log).Tokenizer(maxLength);
    }

    private static (string ModelPath, SentenceTransformerConfig Sentence, Func<int?, TextTokenizer> Tokenizer) Resolve(string nameOrPath, AssetCache? cache, TextWriter? log)
    {
        if (PretrainedEncoder.Find(nameOrPath) is { } encoder)
        {
            cache ??= AssetCache.Default;
            AssetCatalog.Ensure(encoder.Name, cache, log);
            var fetched = cache;
            return (encoder.Asset.ModelPath(cache), encoder.Sentence, max => encoder.LoadTokenizer(fetched, max));
        }
        if (File.Exists(nameOrPath))
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!;
            var sentence = SentenceTransformerConfig.Read(folder) ?? new SentenceTransformerConfig();
            return (nameOrPath, sentence, max => TextTokenizer.FromFolder(folder, max));
        }
        var names = string.Join(", ", PretrainedEncoder.All.Select(e => e.Name));
        throw new ArgumentException($"'{nameOrPath}' is neither a known model ({names}) nor an existing .onnx/.safetensors file");
    }
}
