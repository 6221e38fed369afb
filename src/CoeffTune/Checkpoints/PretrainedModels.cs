using CoeffTune.Assets;
using CoeffTune.Models;
using CoeffTune.Text;

namespace CoeffTune.Checkpoints;

/// <summary>A pretrained BERT-family encoder with a fresh head, its tokenizer, and what loading it did.</summary>
public sealed record PretrainedBert(BertClassifier Model, BertTextTokenizer Tokenizer, LoadReport Report);

/// <summary>One entry point for real pretrained models: by asset name or by file path.</summary>
public static class PretrainedModels
{
    /// <summary>
    /// <paramref name="nameOrPath"/> is an asset name ("minilm", "arctic-xs": fetched into the cache if needed)
    /// or a path to a .onnx / .safetensors BERT checkpoint with vocab.txt beside it. The model mean-pools, its
    /// classification head of <paramref name="classes"/> outputs is freshly initialised.
    /// </summary>
    public static PretrainedBert LoadBert(string nameOrPath, int classes = 2, int? heads = null, int maxLength = 128,
        AssetCache? cache = null, TextWriter? log = null)
    {
        if (classes <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be positive");
        string modelPath, vocabPath;
        var asset = AssetCatalog.All.OfType<SentenceTransformerAsset>()
            .FirstOrDefault(a => string.Equals(a.Name, nameOrPath, StringComparison.OrdinalIgnoreCase));
        if (asset is not null)
        {
            cache ??= AssetCache.Default;
            AssetCatalog.Ensure(asset.Name, cache, log);
            modelPath = asset.ModelPath(cache);
            vocabPath = asset.VocabPath(cache);
        }
        else if (File.Exists(nameOrPath))
        {
            modelPath = nameOrPath;
            vocabPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!, SentenceTransformerAsset.VocabFile);
            if (!File.Exists(vocabPath))
                throw new ArgumentException($"no {SentenceTransformerAsset.VocabFile} beside {nameOrPath}: the tokenizer needs the model's WordPiece vocabulary");
        }
        else
        {
            var names = string.Join(", ", AssetCatalog.All.OfType<SentenceTransformerAsset>().Select(a => a.Name));
            throw new ArgumentException($"'{nameOrPath}' is neither a known model ({names}) nor an existing .onnx/.safetensors file");
        }
        var (model, report) = BertCheckpoint.Load(modelPath, classes, heads);
        return new PretrainedBert(model, new BertTextTokenizer(vocabPath, maxLength), report);
    }
}
